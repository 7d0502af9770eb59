"""1,000 enrolments from 8 threads on PostgreSQL: no slot reused or skipped, strata stay balanced."""
import threading
from collections import defaultdict

import pytest
from django.db import connection, connections

from tests.factories.trial import make_trial
from trial import services
from trial.models import AllocationSlot, AllocationStratum, Case, Trial

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_case_enrolment_never_reuses_or_skips_a_slot():
    assert connection.vendor == "postgresql", "row locks are only meaningful on PostgreSQL"
    t = make_trial(code="CONC", design=Trial.Design.CASE_RANDOMISED, ai_model=False, slots_per_stratum=600,
                   status=Trial.Status.ENROLLING)
    coord, trial = t["coordinator"], t["trial"]
    cases = [
        Case(trial=trial, center=t["centers"][i % 2], code=f"K{i:04d}") for i in range(1000)
    ]
    Case.objects.bulk_create(cases)
    ids = list(Case.objects.filter(trial=trial).values_list("pk", flat=True))
    errors: list[Exception] = []

    def worker(chunk):
        try:
            for pk in chunk:
                services.enrol_case(coord, Case.objects.get(pk=pk))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(ids[i::8],)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []

    revealed = AllocationSlot.objects.filter(stratum__allocation_list__trial=trial, revealed_at__isnull=False)
    assert revealed.count() == 1000
    assert revealed.values("case").distinct().count() == 1000
    per_stratum = defaultdict(list)
    for slot in revealed.select_related("stratum", "arm").order_by("sequence"):
        per_stratum[slot.stratum.key].append(slot)
    max_block = max(trial.allocation_list.block_sizes)
    for key, slots in per_stratum.items():
        assert [s.sequence for s in slots] == list(range(len(slots))), f"gap or reuse in stratum {key}"
        diff, worst = 0, 0
        for s in slots:
            diff += 1 if s.arm.code == "ai_assisted" else -1
            worst = max(worst, abs(diff))
        assert worst <= max_block / 2
    # Each case carries exactly the arm of its slot, and enrolment order is the slot order.
    assert not Case.objects.filter(trial=trial, arm__isnull=True).exists()
    for slot in revealed.select_related("case")[:50]:
        assert slot.case.arm_id == slot.arm_id


def test_double_enrolment_refused_and_nothing_revealed_twice(db):
    t = make_trial(code="DBL", design=Trial.Design.CASE_RANDOMISED, ai_model=False, slots_per_stratum=20,
                   status=Trial.Status.ENROLLING)
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="X1")
    services.enrol_case(t["coordinator"], case)
    with pytest.raises(services.Conflict):
        services.enrol_case(t["coordinator"], case)
    assert AllocationSlot.objects.filter(revealed_at__isnull=False).count() == 1


def test_reader_enrolment_reveals_in_stratum_order(db):
    t = make_trial(code="RDR", readers_per_arm_per_center=2, status=Trial.Status.ENROLLING, enrol_readers=False)
    coord = t["coordinator"]
    revealed = [services.enrol_reader(coord, m) for m in t["readers"]]
    for m in revealed:
        slot = m.allocation
        assert slot.arm_id == m.arm_id and slot.revealed_at is not None
    seqs = defaultdict(list)
    for m in revealed:
        seqs[m.allocation.stratum.key].append(m.allocation.sequence)
    for s in seqs.values():
        assert s == list(range(len(s)))


def test_list_exhaustion_is_a_clear_error(db):
    t = make_trial(code="EXH", design=Trial.Design.CASE_RANDOMISED, ai_model=False, slots_per_stratum=2,
                   block_sizes=(2, 4), centers=1, status=Trial.Status.ENROLLING)
    # The last block is completed: 2 or 4 slots, depending on the (secret) first block size.
    size = AllocationStratum.objects.get(allocation_list__trial=t["trial"]).size
    assert size in (2, 4)
    cases = [services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=f"E{i}")
             for i in range(size + 1)]
    for case in cases[:size]:
        services.enrol_case(t["coordinator"], case)
    with pytest.raises(services.Conflict, match="exhausted"):
        services.enrol_case(t["coordinator"], cases[size])
    cases[size].refresh_from_db()
    assert cases[size].enrolled_at is None and cases[size].arm_id is None
