"""Who has overdue work (issue 17): reads and rating tasks not done ``trial.overdue_after_days`` after they were
made, counted per person. Counts only: no case, arm, draft or report, so a reminder tells a blinded person nothing
the worklist does not. Reads are counted only while the reader can open them (an AI-arm read whose draft is not
ready, or a crossover read inside its washout, is not the reader's delay)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from rating.models import Rating
from reading.models import Read
from reading.selectors import available_reads
from trial.models import Case, Membership, Trial

#: Statuses in which people are asked to work (reads from enrolling on, ratings until lock).
REMIND_STATUSES = (Trial.Status.ENROLLING, Trial.Status.READING, Trial.Status.RATING)


@dataclass(frozen=True)
class Overdue:
    membership_id: int
    username: str
    email: str
    role: str  # reader or expert
    overdue: int


def overdue_people(trial: Trial, now=None) -> list[Overdue]:
    """One row per reader or expert with at least one overdue read or rating task, by username."""
    if trial.status not in REMIND_STATUSES:
        return []
    now = now or timezone.now()
    cutoff = now - timedelta(days=trial.overdue_after_days)
    reads = available_reads(
        Read.objects.filter(case__trial=trial, reader__isnull=False, created_at__lt=cutoff)
        .exclude(status=Read.Status.DONE).exclude(case__status=Case.Status.EXCLUDED), trial, now)
    ratings = (Rating.objects.filter(case__trial=trial, created_at__lt=cutoff).exclude(status=Rating.Status.DONE)
               .exclude(case__status=Case.Status.EXCLUDED))
    counts = {}
    for field, qs in (("reader", reads), ("expert", ratings)):
        for member_id, n in qs.order_by().values_list(field).annotate(n=Count("id")):
            counts[member_id] = n
    members = Membership.objects.filter(pk__in=counts).select_related("user").order_by("user__username", "role")
    return [Overdue(m.pk, m.user.username, m.user.email, m.role, counts[m.pk]) for m in members]
