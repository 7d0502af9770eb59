"""/api/arena/... (included from config/api_urls.py): the standalone arena (issue 20 item 1). The coordinator's
routes come first: their fixed words would otherwise be read as a task id."""
from django.urls import path

from . import arena_api as api

urlpatterns = [
    path("<slug:trial_code>/setup/", api.ArenaSetupView.as_view(), name="arena-setup"),
    path("<slug:trial_code>/draw/", api.ArenaDrawView.as_view(), name="arena-draw"),
    path("<slug:trial_code>/", api.ArenaWorklistView.as_view(), name="arena-worklist"),
    path("<slug:trial_code>/<opaque_id:public_id>/", api.ArenaTaskView.as_view(), name="arena-task"),
    path("<slug:trial_code>/<opaque_id:public_id>/open/", api.ArenaOpenView.as_view(), name="arena-open"),
    path("<slug:trial_code>/<opaque_id:public_id>/autosave/", api.ArenaAutosaveView.as_view(), name="arena-autosave"),
    path("<slug:trial_code>/<opaque_id:public_id>/submit/", api.ArenaSubmitView.as_view(), name="arena-submit"),
    path("<slug:trial_code>/<opaque_id:public_id>/amend/", api.ArenaAmendView.as_view(), name="arena-amend"),
]
