"""Writes for reads and ratings. Each public function is one transaction."""
from __future__ import annotations

import hashlib
import hmac

from django.db import transaction
from django.db.models import Count, Q

from trial import audit
from trial.models import Case, Membership, Trial
from trial.permissions import Role

from .models import Read


def worklist_order_key(trial: Trial, reader_id: int, case_id: int, session: int = 1) -> int:
    """Each reader's worklist order: a keyed hash (the trial's secret is the recorded seed), so it is
    reproducible, differs per reader and reveals nothing about arm or case order."""
    msg = f"{reader_id}|{case_id}|{session}".encode()
    return int.from_bytes(hmac.new(trial.secret.encode(), msg, hashlib.sha256).digest()[:7], "big")


def _least_loaded_reader(trial: Trial, arm, center) -> Membership | None:
    return (
        Membership.objects.filter(trial=trial, role=Role.READER, arm=arm, center=center, enrolled_at__isnull=False)
        .annotate(n=Count("reads"))
        .order_by("n", "pk")
        .first()
    )


def _new_read(case: Case, arm, reader: Membership | None, session: int = 1, after_read: Read | None = None) -> Read:
    key = worklist_order_key(case.trial, reader.pk if reader else 0, case.pk, session)
    return Read.objects.create(case=case, arm=arm, reader=reader, session=session, after_read=after_read, order_key=key)


@transaction.atomic
def create_reads_for_case(case: Case, actor=None) -> list[Read]:
    """Reads from the design (DESIGN.md sections 1 and 4), made inside the enrolment's transaction."""
    trial = case.trial
    arms = list(trial.arms.all())
    reads: list[Read] = []
    if trial.design == Trial.Design.PAIRED_BY_CASE:
        for arm in arms:
            reads.append(_new_read(case, arm, _least_loaded_reader(trial, arm, case.center)))
    elif trial.design == Trial.Design.CASE_RANDOMISED:
        reads.append(_new_read(case, case.arm, _least_loaded_reader(trial, case.arm, case.center)))
    else:  # crossover: every enrolled reader reads the case in both arms, own arm first
        readers = Membership.objects.filter(trial=trial, role=Role.READER, enrolled_at__isnull=False)
        for reader in readers:
            reads.extend(_crossover_reads(case, reader, arms))
    for r in reads:
        audit.record(actor=actor, trial=trial, action="create", obj=r, after=audit.snapshot(r))
    return reads


def _crossover_reads(case: Case, reader: Membership, arms) -> list[Read]:
    ordered = sorted(arms, key=lambda a: (a.pk != reader.arm_id, a.code))
    first = _new_read(case, ordered[0], reader, session=1)
    out = [first]
    for i, arm in enumerate(ordered[1:], start=2):
        out.append(_new_read(case, arm, reader, session=i, after_read=first))
    return out


@transaction.atomic
def on_reader_enrolled(reader: Membership, actor=None) -> list[Read]:
    """A reader enrolled after cases: take over unassigned reads of their arm and center (paired / case-randomised),
    or get both reads of every enrolled case (crossover)."""
    trial = reader.trial
    made: list[Read] = []
    if trial.design == Trial.Design.CROSSOVER:
        arms = list(trial.arms.all())
        for case in trial.cases.filter(enrolled_at__isnull=False).exclude(reads__reader=reader):
            made.extend(_crossover_reads(case, reader, arms))
        for r in made:
            audit.record(actor=actor, trial=trial, action="create", obj=r, after=audit.snapshot(r))
        return made
    unassigned = Read.objects.select_for_update().filter(
        case__trial=trial, arm=reader.arm, case__center=reader.center, reader__isnull=True
    )
    for r in unassigned:
        before = audit.snapshot(r)
        r.reader = reader
        r.order_key = worklist_order_key(trial, reader.pk, r.case_id, r.session)
        r.save(update_fields=["reader", "order_key"])
        audit.record(actor=actor, trial=trial, action="assign", obj=r, before=before, after=audit.snapshot(r))
        made.append(r)
    return made


def reading_counts(trial: Trial) -> dict:
    return Read.objects.filter(case__trial=trial).aggregate(
        reads_total=Count("id"),
        reads_done=Count("id", filter=Q(status=Read.Status.DONE)),
        reads_in_progress=Count("id", filter=Q(status=Read.Status.IN_PROGRESS)),
        reads_unassigned=Count("id", filter=Q(reader__isnull=True)),
    )
