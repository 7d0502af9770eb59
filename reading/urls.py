from django.urls import path

from . import image_views, views

app_name = "reading"
urlpatterns: list = [
    path("images/<str:public_id>/meta.json", image_views.image_meta, name="image-meta"),
    path("images/<str:public_id>/display.png", image_views.image_display, name="image-display"),
    path("images/<str:public_id>/full.bin", image_views.image_full, name="image-full"),
    path("<slug:trial_code>/", views.worklist, name="worklist"),
    path("<slug:trial_code>/next/", views.next_read, name="next"),
    path("<slug:trial_code>/read/<str:public_id>/", views.read_page, name="read"),
    path("<slug:trial_code>/read/<str:public_id>/submit/", views.read_submit, name="submit"),
]
