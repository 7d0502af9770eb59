"""Reader API routes, included at /api/reading/ (namespace reading-api)."""
from django.urls import path

from . import api

app_name = "reading-api"
urlpatterns = [
    path("trials/<slug:trial_code>/worklist/", api.WorklistView.as_view(), name="worklist"),
    path("reads/<opaque_id:public_id>/", api.ReadDetailView.as_view(), name="detail"),
    path("reads/<opaque_id:public_id>/open/", api.OpenView.as_view(), name="open"),
    path("reads/<opaque_id:public_id>/heartbeat/", api.HeartbeatView.as_view(), name="heartbeat"),
    path("reads/<opaque_id:public_id>/autosave/", api.AutosaveView.as_view(), name="autosave"),
    path("reads/<opaque_id:public_id>/submit/", api.SubmitView.as_view(), name="submit"),
    path("reads/<opaque_id:public_id>/amend/", api.AmendView.as_view(), name="amend"),
]
