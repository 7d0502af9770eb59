from django.urls import path

from . import views

app_name = "rating"
urlpatterns: list = [
    path("<slug:trial_code>/", views.worklist, name="worklist"),
    path("<slug:trial_code>/<opaque_id:public_id>/", views.task, name="task"),
    path("<slug:trial_code>/<opaque_id:public_id>/amend/", views.RatingAmendView.as_view(), name="amend"),
]
