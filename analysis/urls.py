from django.urls import path

from . import api, views

app_name = "analysis"
urlpatterns = [
    path("<slug:trial_code>/", views.analysis_page, name="page"),
    path("<slug:trial_code>/runs/<int:run_id>/status.json", api.RunStatusView.as_view(), name="run_status"),
    path("<slug:trial_code>/runs/<int:run_id>/files/<path:name>", views.run_file, name="file"),
    path("<slug:trial_code>/runs/<int:run_id>/final/", views.declare_final, name="final"),
]
