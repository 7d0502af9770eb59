from django.urls import path

from . import views, views_audit

app_name = "trial"
urlpatterns = [
    path("new/", views.trial_create, name="create"),
    path("<slug:trial_code>/", views.trial_detail, name="detail"),
    path("<slug:trial_code>/settings/", views.SettingsView.as_view(), name="settings"),
    path("<slug:trial_code>/centers/", views.center_add, name="center_add"),
    path("<slug:trial_code>/centers/<int:center_id>/edit/", views.center_edit, name="center_edit"),
    path("<slug:trial_code>/centers/<int:center_id>/remove/", views.center_remove, name="center_remove"),
    path("<slug:trial_code>/arms/<int:arm_id>/edit/", views.arm_edit, name="arm_edit"),
    path("<slug:trial_code>/arms/<int:arm_id>/remove/", views.arm_remove, name="arm_remove"),
    path("<slug:trial_code>/members/<int:member_id>/edit/", views.member_edit, name="member_edit"),
    path("<slug:trial_code>/members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path("<slug:trial_code>/arms/", views.arm_add, name="arm_add"),
    path("<slug:trial_code>/members/", views.member_add, name="member_add"),
    path("<slug:trial_code>/cases/", views.case_add, name="case_add"),
    path("<slug:trial_code>/allocation-list/", views.allocation_generate, name="allocation_generate"),
    path("<slug:trial_code>/allocations/", views.allocations, name="allocations"),
    path("<slug:trial_code>/members/<int:member_id>/enrol/", views.enrol_reader, name="enrol_reader"),
    path("<slug:trial_code>/cases/<int:case_id>/enrol/", views.enrol_case, name="enrol_case"),
    path("<slug:trial_code>/cases/enrol-all/", views.enrol_all, name="enrol_all"),
    path("<slug:trial_code>/status/", views.StatusChangeView.as_view(), name="status"),
    path("<slug:trial_code>/audit/", views_audit.AuditLogView.as_view(), name="audit"),
    path("<slug:trial_code>/audit/<int:entry_id>/", views_audit.AuditEntryView.as_view(), name="audit_entry"),
    path("<slug:trial_code>/audit/export.csv", views_audit.AuditExportView.as_view(), name="audit_export"),
    path("<slug:trial_code>/audit/verify/", views_audit.AuditVerifyView.as_view(), name="audit_verify"),
    path("<slug:trial_code>/audit/rows/", views_audit.RowHistoryView.as_view(), name="row_history"),
    path("<slug:trial_code>/access/", views_audit.AccessReviewView.as_view(), name="access_review"),
    path("<slug:trial_code>/access/export.csv", views_audit.AccessReviewExportView.as_view(),
         name="access_review_export"),
]
