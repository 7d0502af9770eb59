"""/api/rating/... (included from config/api_urls.py)."""
from django.urls import path

from . import api

urlpatterns = [
    path("<slug:trial_code>/", api.WorklistView.as_view(), name="rating-worklist"),
    path("<slug:trial_code>/<opaque_id:public_id>/", api.TaskView.as_view(), name="rating-task"),
    path("<slug:trial_code>/<opaque_id:public_id>/open/", api.OpenView.as_view(), name="rating-open"),
    path("<slug:trial_code>/<opaque_id:public_id>/autosave/", api.AutosaveView.as_view(), name="rating-autosave"),
    path("<slug:trial_code>/<opaque_id:public_id>/submit/", api.SubmitView.as_view(), name="rating-submit"),
    path("<slug:trial_code>/<opaque_id:public_id>/amend/", api.AmendView.as_view(), name="rating-amend"),
]
