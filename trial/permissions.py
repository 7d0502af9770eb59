"""Who may do what: the one place role checks live (views, API and services call these)."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from core.compiled import CompiledQuery

from .models import Membership, Trial

Role = Membership.Role


# Every page asks it (the navigation): compiled once per process (core.compiled; issue 19).
_ROLES = CompiledQuery(lambda *, user_id, trial_id: Membership.objects.filter(user_id=user_id, trial_id=trial_id)
                       .values_list("role"), kind="column", params={"user_id": int, "trial_id": int})


def roles_of(user, trial: Trial) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cache = getattr(user, "_trial_roles_cache", None)
    if cache is None:
        cache = {}
        user._trial_roles_cache = cache
    if trial.pk not in cache:
        cache[trial.pk] = set(_ROLES(user_id=user.pk, trial_id=trial.pk))
    return cache[trial.pk]


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def role_conflict(held: set[str] | frozenset[str], role: str) -> str | None:
    """The one rule of role exclusivity within a trial (docs/design.md section 5: one person, one side): an expert holds
    no other role, and a reader is not also statistician or coordinator. Returns why `role` cannot be added to the
    roles already `held` in the trial, or None when it can (coordinator with statistician is allowed)."""
    for other in sorted(set(held) - {role}):
        combo = {role, other}
        if Role.EXPERT in combo:
            return (f"One person cannot be both {_a(other)} and {_a(role)} in the same trial: an expert holds no "
                    "other role, so the blind rating never meets the arms, readers or drafts that other roles see.")
        if Role.READER in combo and combo & {Role.STATISTICIAN, Role.COORDINATOR}:
            return (f"One person cannot be both {_a(other)} and {_a(role)} in the same trial: a reader is not also "
                    "statistician or coordinator, whose exports and pages show the allocations and the model's "
                    "output for cases still on the reader's worklist.")
    return None


def has_role(user, trial: Trial, *roles: str) -> bool:
    return bool(roles_of(user, trial) & set(roles))


def require_role(user, trial: Trial, *roles: str) -> None:
    if not has_role(user, trial, *roles):
        raise PermissionDenied("You do not have the role this page needs in this trial.")


def can_create_trials(user) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.has_perm("trial.add_trial")))


# Every reader and expert request asks it (their own read, task or worklist): compiled (core.compiled).
_MEMBERSHIP = CompiledQuery(
    lambda *, user_id, trial_id, role: Membership.objects.filter(user_id=user_id, trial_id=trial_id, role=role)
    .select_related("center", "arm").order_by("pk")[:1], kind="object",
    params={"user_id": int, "trial_id": int, "role": str})


def membership_of(user, trial: Trial, role: str) -> Membership:
    m = _MEMBERSHIP(user_id=user.pk, trial_id=trial.pk, role=role) if getattr(user, "pk", None) else None
    if m is None:
        raise PermissionDenied("You are not a member of this trial in that role.")
    return m


class TrialRolePermission(BasePermission):
    """DRF permission: the view's `trial_roles` (per action) must be held in the view's trial."""

    def has_permission(self, request, view) -> bool:
        trial = view.get_trial()
        roles = view.roles_for_action()
        return has_role(request.user, trial, *roles)
