from django.urls import path

from . import views

app_name = "reading"
urlpatterns: list = [
    path("<slug:trial_code>/", views.worklist, name="worklist"),
    path("<slug:trial_code>/next/", views.next_read, name="next"),
    path("<slug:trial_code>/read/<opaque_id:public_id>/", views.read_page, name="read"),
    path("<slug:trial_code>/read/<opaque_id:public_id>/submit/", views.read_submit, name="submit"),
    path("<slug:trial_code>/read/<opaque_id:public_id>/amend/", views.ReadAmendView.as_view(), name="amend"),
]
