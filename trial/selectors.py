"""Reads that respect permissions. Never returns unrevealed allocations."""
from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from . import signals
from .audit import CHAIN_OPEN
from .blinding import require_not_blinded
from .models import AllocationList, AllocationSlot, AuditEntry, Case, Membership, Trial
from .permissions import Role, require_role


def trials_for_user(user) -> QuerySet[Trial]:
    return Trial.objects.filter(memberships__user=user).distinct()


def trial_for_coordinator(user, code: str) -> Trial:
    trial = Trial.objects.get(code=code)
    require_role(user, trial, Role.COORDINATOR)
    return trial


def revealed_allocations(user, trial: Trial) -> QuerySet[AllocationSlot]:
    """Coordinators see allocations already revealed by enrolment, nothing else (and, before lock, not when they
    also read or rate: trial/blinding.py)."""
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)
    return (
        AllocationSlot.objects.filter(stratum__allocation_list__trial=trial, revealed_at__isnull=False)
        .select_related("arm", "case", "membership__user", "stratum")
        .order_by("revealed_at", "pk")
    )


def trial_progress(trial: Trial) -> dict:
    cases = Case.objects.filter(trial=trial).aggregate(
        total=Count("id"),
        enrolled=Count("id", filter=Q(enrolled_at__isnull=False)),
        excluded=Count("id", filter=Q(status=Case.Status.EXCLUDED)),
    )
    members = dict(
        Membership.objects.filter(trial=trial).values_list("role").annotate(n=Count("id")).values_list("role", "n")
    )
    readers_enrolled = Membership.objects.filter(trial=trial, role=Role.READER, enrolled_at__isnull=False).count()
    progress = {"cases": cases, "members": members, "readers_enrolled": readers_enrolled}
    for _receiver, counts in signals.progress_requested.send(sender=Trial, trial=trial):
        progress.update(counts)  # reading's and rating's counts (their apps connect the receivers)
    return progress


def audit_entries(user, trial: Trial) -> QuerySet[AuditEntry]:
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)  # entries carry reads' arms and ratings' A/B reads

    # Newest first across the trial's chains; the registry entries of actor chains are bookkeeping, not changes.
    return (AuditEntry.objects.filter(trial=trial).exclude(action=CHAIN_OPEN)
            .select_related("actor").order_by("-at", "-pk"))


def allocation_list_summary(user, trial: Trial) -> dict | None:
    """What the coordinator and statistician may know of the sealed list: its commitment and public settings;
    seed, salt and block sizes only once the trial is locked (docs/design.md section 5). None when not generated."""
    require_role(user, trial, Role.COORDINATOR, Role.STATISTICIAN)
    alist = AllocationList.objects.filter(trial=trial).first()
    if alist is None:
        return None
    out = {"unit": alist.unit, "ratio": alist.ratio, "stratify_by_experience": alist.stratify_by_experience,
           "slots_per_stratum": alist.slots_per_stratum, "list_hash": alist.list_hash, "created_at": alist.created_at,
           "disclosed": trial.is_locked}
    if trial.is_locked:
        out.update(block_sizes=alist.block_sizes, seed=alist.seed, salt=alist.salt, scheme=alist.scheme)
    return out
