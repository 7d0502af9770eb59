"""/api/rating/... (included from config/api_urls.py)."""
from django.urls import path

from . import rating_api

urlpatterns = [
    path("<slug:trial_code>/", rating_api.WorklistView.as_view(), name="rating-worklist"),
    path("<slug:trial_code>/<str:public_id>/", rating_api.TaskView.as_view(), name="rating-task"),
    path("<slug:trial_code>/<str:public_id>/open/", rating_api.OpenView.as_view(), name="rating-open"),
    path("<slug:trial_code>/<str:public_id>/autosave/", rating_api.AutosaveView.as_view(), name="rating-autosave"),
    path("<slug:trial_code>/<str:public_id>/submit/", rating_api.SubmitView.as_view(), name="rating-submit"),
]
