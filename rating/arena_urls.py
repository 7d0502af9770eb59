"""/arena/...: the expert's standalone-arena pages (issue 20 item 1; docs/ai-evaluation.md)."""
from django.urls import path

from . import views

app_name = "arena"
urlpatterns: list = [
    path("<slug:trial_code>/", views.ArenaWorklistView.as_view(), name="worklist"),
    # The coordinator's page comes before the task route: its fixed word would otherwise be read as a task id.
    path("<slug:trial_code>/setup/", views.ArenaSetupView.as_view(), name="setup"),
    path("<slug:trial_code>/<opaque_id:public_id>/", views.ArenaTaskView.as_view(), name="task"),
    path("<slug:trial_code>/<opaque_id:public_id>/amend/", views.ArenaAmendView.as_view(), name="amend"),
]
