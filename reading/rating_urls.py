from django.urls import path

from . import rating_views

app_name = "rating"
urlpatterns: list = [
    path("<slug:trial_code>/", rating_views.worklist, name="worklist"),
    path("<slug:trial_code>/<str:public_id>/", rating_views.task, name="task"),
]
