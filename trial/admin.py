"""Admin for superusers: read-only views of trial data (writes go through the audited services). The sealed
allocation list is deliberately absent."""
from django.contrib import admin

from .models import Arm, AuditEntry, Case, Center, Membership, Trial


class ReadOnlyTrialData(admin.ModelAdmin):
    """Superusers may look, never write: every change to trial data goes through the services, which check the
    lock and the roles and record it in the audit log (issue 14: cases and memberships were added to a locked trial
    here, unaudited)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Trial)
class TrialAdmin(ReadOnlyTrialData):
    list_display = ["code", "title", "design", "status"]
    readonly_fields = ["status", "locked_at"]
    exclude = ["secret"]


@admin.register(Center)
class CenterAdmin(ReadOnlyTrialData):
    list_display = ["code", "name", "trial"]


@admin.register(Arm)
class ArmAdmin(ReadOnlyTrialData):
    list_display = ["code", "name", "trial", "is_ai"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyTrialData):
    list_display = ["user", "trial", "role", "center", "experience"]
    exclude = ["arm"]  # a reader's arm is their allocation: set only by enrolment
    readonly_fields = ["enrolled_at"]


@admin.register(Case)
class CaseAdmin(ReadOnlyTrialData):
    list_display = ["code", "trial", "center", "status"]
    exclude = ["arm"]
    readonly_fields = ["enrolled_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyTrialData):
    list_display = ["chain", "sequence", "at", "actor_name", "action", "object_type", "object_id"]
    list_filter = ["chain", "action"]

