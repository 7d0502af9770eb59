"""One person, one side (docs/design.md section 5), enforced where arm-level material is served.

The membership rules keep a reader or an expert from holding another role in the same trial; this is the defence
behind them, for memberships made before the rule or written around the services: until the trial is locked, a
person who reads or rates in it receives no export, analysis, draft, audit entry or allocation, and sees no arm on
the trial's pages and API, whatever other role they also hold.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from .models import Trial
from .permissions import Role, has_role

BLINDED_ROLES = (Role.READER, Role.EXPERT)
BLINDED_MESSAGE = ("You read or rate in this trial, so until it is locked you cannot see its exports, analyses, "
                   "drafts, allocations or audit log (they would unblind you).")


def is_blinded_participant(user, trial: Trial) -> bool:
    """True while ``trial`` is not locked and ``user`` is one of its readers or experts."""
    return not trial.is_locked and has_role(user, trial, *BLINDED_ROLES)


def require_not_blinded(user, trial: Trial) -> None:
    """Refuse (403) arm-level material to a blinded participant."""
    if is_blinded_participant(user, trial):
        raise PermissionDenied(BLINDED_MESSAGE)


class NotBlindedParticipant(BasePermission):
    """DRF permission: the view's trial (``view.get_trial()``) must not blind the requesting user."""

    message = BLINDED_MESSAGE

    def has_permission(self, request, view) -> bool:
        return not is_blinded_participant(request.user, view.get_trial())
