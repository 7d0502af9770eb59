from django.urls import path

from . import views

app_name = "imports"  # URL names kept: imports:upload
urlpatterns = [
    path("<slug:trial_code>/", views.upload, name="upload"),
    path("<slug:trial_code>/cases/<int:case_id>/review/", views.review, name="review"),
]
