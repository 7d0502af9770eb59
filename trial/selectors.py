"""Reads that respect permissions. Never returns unrevealed allocations."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from . import signals
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
        not_enrolled=Count("id", filter=Q(status=Case.Status.IMPORTED, enrolled_at__isnull=True, needs_review=False)),
        awaiting_review=Count("id", filter=Q(status=Case.Status.IMPORTED, needs_review=True)),
    )
    members = dict(
        Membership.objects.filter(trial=trial).values_list("role").annotate(n=Count("id")).values_list("role", "n")
    )
    readers_enrolled = Membership.objects.filter(trial=trial, role=Role.READER, enrolled_at__isnull=False).count()
    readers_not_enrolled = members.get(Role.READER, 0) - readers_enrolled
    progress = {"cases": cases, "members": members, "readers_enrolled": readers_enrolled,
                "readers_not_enrolled": readers_not_enrolled}
    for _receiver, counts in signals.progress_requested.send(sender=Trial, trial=trial):
        progress.update(counts)  # reading's and rating's counts (their apps connect the receivers)
    return progress


@dataclass(frozen=True)
class Outstanding:
    """One kind of unfinished work a status change would leave behind: `code` for callers, `message` for people."""

    code: str
    count: int
    message: str


# What each status change would leave behind (docs/design.md section 2's workflow): enrolling needs readers and a
# full expert panel; reading needs the cases and readers enrolled and every read assigned; rating needs the reads
# done; lock needs everything done. Each entry: (code, message template, how to count it from the progress dict).
_CHECKS = {
    "no_readers": ("no reader has been added", lambda p, t: 0 if p["members"].get(Role.READER) else 1),
    "experts_short": ("{n} expert(s) short of the panel of {panel}",
                      lambda p, t: max(0, t.expert_panel_size - p["members"].get(Role.EXPERT, 0))),
    "cases_not_enrolled": ("{n} imported case(s) not enrolled", lambda p, t: p["cases"]["not_enrolled"]),
    "cases_awaiting_review": ("{n} case(s) awaiting image review", lambda p, t: p["cases"]["awaiting_review"]),
    "readers_not_enrolled": ("{n} reader(s) not enrolled", lambda p, t: p["readers_not_enrolled"]),
    "reads_unassigned": ("{n} read(s) without a reader", lambda p, t: p.get("reads_unassigned") or 0),
    "reads_not_done": ("{n} read(s) not done", lambda p, t: (p.get("reads_total") or 0) - (p.get("reads_done") or 0)),
    "ratings_not_done": ("{n} rating(s) not done",
                         lambda p, t: (p.get("ratings_total") or 0) - (p.get("ratings_done") or 0)),
    "cases_short_of_panel": ("{n} case(s) with a short expert panel", lambda p, t: p.get("cases_short_of_panel") or 0),
}
_ENROLMENT = ["cases_not_enrolled", "cases_awaiting_review", "readers_not_enrolled", "reads_unassigned"]
TRANSITION_CHECKS = {
    Trial.Status.ENROLLING: ["no_readers", "experts_short"],
    Trial.Status.READING: _ENROLMENT,
    Trial.Status.RATING: [*_ENROLMENT, "reads_not_done"],
    Trial.Status.LOCKED: [*_ENROLMENT, "reads_not_done", "ratings_not_done", "cases_short_of_panel"],
}


def outstanding_work(trial: Trial, to_status: str) -> list[Outstanding]:
    """What moving `trial` to `to_status` would leave unfinished, from the trial's own counts and the apps above it
    (progress_requested). No permission check: the status service calls it under the trial's row lock; pages and
    the API go through `status_preview`."""
    progress = trial_progress(trial)
    out = []
    for code in TRANSITION_CHECKS.get(to_status, []):
        template, count = _CHECKS[code]
        n = count(progress, trial)
        if n > 0:
            out.append(Outstanding(code, n, template.format(n=n, panel=trial.expert_panel_size)))
    return out


def next_status(trial: Trial) -> str | None:
    order = [s.value for s in Trial.Status]
    i = order.index(trial.status)
    return order[i + 1] if i + 1 < len(order) else None


def status_preview(user, trial: Trial) -> dict:
    """For the coordinator's confirmation: the next status and what moving there would leave outstanding (counts
    only, no arm: nothing here is masked before lock)."""
    require_role(user, trial, Role.COORDINATOR)
    nxt = next_status(trial)
    outstanding = outstanding_work(trial, nxt) if nxt else []
    return {"status": trial.status, "next_status": nxt, "outstanding": outstanding,
            "reason_required": bool(outstanding) or nxt == Trial.Status.LOCKED}


def audit_entries(user, trial: Trial) -> QuerySet[AuditEntry]:
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)  # entries carry reads' arms and ratings' A/B reads
    from .audit import CHAIN_OPEN

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
