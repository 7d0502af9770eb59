"""Admin for superusers. The sealed allocation list is deliberately absent; audit entries are read-only."""
from django.contrib import admin

from .models import Arm, AuditEntry, Case, Center, Membership, Trial


class ReadOnlyAfterLock(admin.ModelAdmin):
    def _trial_of(self, obj):
        return obj if isinstance(obj, Trial) else getattr(obj, "trial", None)

    def has_change_permission(self, request, obj=None):
        trial = self._trial_of(obj) if obj else None
        if trial is not None and trial.is_locked:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # deletions go through services, which audit them


@admin.register(Trial)
class TrialAdmin(ReadOnlyAfterLock):
    list_display = ["code", "title", "design", "status"]
    readonly_fields = ["status", "locked_at"]
    exclude = ["secret"]


@admin.register(Center)
class CenterAdmin(ReadOnlyAfterLock):
    list_display = ["code", "name", "trial"]


@admin.register(Arm)
class ArmAdmin(ReadOnlyAfterLock):
    list_display = ["code", "name", "trial", "is_ai", "model_version"]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAfterLock):
    list_display = ["user", "trial", "role", "center", "experience"]
    exclude = ["arm"]  # a reader's arm is their allocation: set only by enrolment
    readonly_fields = ["enrolled_at"]


@admin.register(Case)
class CaseAdmin(ReadOnlyAfterLock):
    list_display = ["code", "trial", "center", "status"]
    exclude = ["arm"]
    readonly_fields = ["enrolled_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["chain", "sequence", "at", "actor_name", "action", "object_type", "object_id"]
    list_filter = ["chain", "action"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
