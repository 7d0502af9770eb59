from django.urls import path

from . import api

urlpatterns = [
    path("trials/<slug:trial_code>/cases/<int:case_id>/overview/", api.CaseOverviewAPI.as_view(), name="case-overview"),
    path("trials/<slug:trial_code>/cases/<int:case_id>/exclude/", api.CaseExcludeAPI.as_view(), name="case-exclude"),
]
