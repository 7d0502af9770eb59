"""/arena/...: the expert's standalone-arena pages (issue 20 item 1; docs/ai-evaluation.md)."""
from django.urls import path

from . import views

app_name = "arena"
urlpatterns: list = [
    path("<slug:trial_code>/", views.ArenaWorklistView.as_view(), name="worklist"),
    path("<slug:trial_code>/<str:public_id>/", views.ArenaTaskView.as_view(), name="task"),
]
