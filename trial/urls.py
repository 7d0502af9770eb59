from django.urls import path

from . import views

app_name = "trial"
urlpatterns = [
    path("new/", views.trial_create, name="create"),
    path("<slug:trial_code>/", views.trial_detail, name="detail"),
    path("<slug:trial_code>/centers/", views.center_add, name="center_add"),
    path("<slug:trial_code>/arms/", views.arm_add, name="arm_add"),
    path("<slug:trial_code>/members/", views.member_add, name="member_add"),
    path("<slug:trial_code>/cases/", views.case_add, name="case_add"),
    path("<slug:trial_code>/allocation-list/", views.allocation_generate, name="allocation_generate"),
    path("<slug:trial_code>/allocations/", views.allocations, name="allocations"),
    path("<slug:trial_code>/members/<int:member_id>/enrol/", views.enrol_reader, name="enrol_reader"),
    path("<slug:trial_code>/cases/<int:case_id>/enrol/", views.enrol_case, name="enrol_case"),
    path("<slug:trial_code>/cases/enrol-all/", views.enrol_all, name="enrol_all"),
    path("<slug:trial_code>/status/", views.StatusChangeView.as_view(), name="status"),
    path("<slug:trial_code>/audit/", views.audit_log, name="audit"),
]
