"""Reader API routes, included at /api/reading/ (namespace reading-api)."""
from django.urls import path

from . import api

app_name = "reading-api"
urlpatterns = [
    path("trials/<slug:trial_code>/worklist/", api.worklist, name="worklist"),
    path("reads/<str:public_id>/", api.detail, name="detail"),
    path("reads/<str:public_id>/open/", api.open_read, name="open"),
    path("reads/<str:public_id>/heartbeat/", api.heartbeat, name="heartbeat"),
    path("reads/<str:public_id>/autosave/", api.autosave, name="autosave"),
    path("reads/<str:public_id>/submit/", api.submit, name="submit"),
]
