from django.urls import path

from . import views

app_name = "enrolment"
urlpatterns = [
    path("<slug:trial_code>/cases/<int:case_id>/", views.CaseDetailView.as_view(), name="case"),
    path("<slug:trial_code>/reminders/", views.RemindersView.as_view(), name="reminders"),
    path("<slug:trial_code>/cases/<int:case_id>/exclude/", views.CaseExcludeView.as_view(), name="case_exclude"),
]
