"""Reads are made at enrolment from the design; worklists are shuffled per reader, AI reads wait for their draft,
crossover second reads wait for the washout."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inference.models import Draft
from inference.selectors import arm_model_version
from reading import selectors, services
from reading.models import Read
from tests.factories.reading import ready_draft
from tests.factories.trial import add_cases, make_trial
from trial import services as trial_services
from trial.models import Trial

pytestmark = pytest.mark.django_db


def test_paired_one_read_per_arm_per_case_at_the_case_center_balanced():
    t = make_trial(code="PD1", readers_per_arm_per_center=2)
    cases = add_cases(t, 8)
    for case in cases:
        reads = list(Read.objects.filter(case=case).select_related("reader", "arm"))
        assert sorted(r.arm.code for r in reads) == ["ai_assisted", "unassisted"]
        for r in reads:
            assert r.reader is not None
            assert r.reader.arm_id == r.arm_id
            assert r.reader.center_id == case.center_id
    load = Counter(Read.objects.filter(case__trial=t["trial"]).values_list("reader_id", flat=True))
    assert len(load) == 8  # every reader (2 per arm per center) got reads
    assert max(load.values()) - min(load.values()) <= 1


def test_case_randomised_one_read_in_the_allocated_arm():
    t = make_trial(code="CR1", design=Trial.Design.CASE_RANDOMISED)
    for m in t["readers"]:
        trial_services.enrol_reader(t["coordinator"], m)
    cases = add_cases(t, 8)
    for case in cases:
        reads = list(Read.objects.filter(case=case).select_related("reader"))
        assert len(reads) == 1
        assert reads[0].arm_id == case.arm_id
        assert reads[0].reader is not None and reads[0].reader.center_id == case.center_id


def test_crossover_both_arms_second_read_held_back_until_washout():
    t = make_trial(code="CX1", design=Trial.Design.CROSSOVER, centers=1, washout_days=14)
    cases = add_cases(t, 3)
    mv = arm_model_version(t["arms"]["ai_assisted"])
    for c in cases:
        ready_draft(c, mv)
    reader = t["readers"][0]
    reads = list(Read.objects.filter(reader=reader))
    assert len(reads) == 2 * len(cases)
    for case in cases:
        pair = sorted((r for r in reads if r.case_id == case.pk), key=lambda r: r.session)
        assert {r.arm_id for r in pair} == {a.pk for a in t["arms"].values()}
        assert pair[0].arm_id == reader.arm_id and pair[1].after_read_id == pair[0].pk
    user = reader.user
    first_ids = {r.pk for r in reads if r.session == 1}
    assert {r.pk for r in selectors.worklist_for(user, t["trial"])} == first_ids
    first = next(r for r in reads if r.session == 1)
    services.open_read(user, first)
    services.submit_read(user, first, _complete(t["trial"]))
    second = Read.objects.get(after_read=first)
    assert second not in selectors.worklist_for(user, t["trial"])
    assert "washout" in selectors.unavailable_reason(second)
    later = timezone.now() + timedelta(days=14, minutes=1)
    assert second in selectors.worklist_for(user, t["trial"], now=later)
    assert second not in selectors.worklist_for(user, t["trial"], now=later - timedelta(days=1))
    # The reader sees the held reads as rows, with why and (in the washout) from when.
    waiting = {w["case"]: w for w in selectors.waiting_reads(user, t["trial"])}
    assert len(waiting) == len(cases)
    first.refresh_from_db()
    in_washout = waiting[first.case.code]
    assert in_washout["available_from"] == first.submitted_at + timedelta(days=14)
    assert "Washout" in in_washout["reason"]
    assert all("first read" in w["reason"] and w["available_from"] is None
               for code, w in waiting.items() if code != first.case.code)
    assert selectors.waiting_reads(user, t["trial"], now=later)[0]["case"] != first.case.code
    from django.test import Client

    c = Client()
    c.force_login(user)
    html = c.get(reverse("reading:worklist", args=["CX1"])).content.decode()
    assert "Not yet available" in html and in_washout["available_from"].strftime("%Y-%m-%d") in html


def test_worklist_order_shuffled_per_reader_from_recorded_key():
    t = make_trial(code="OR1", design=Trial.Design.CROSSOVER, centers=1)
    add_cases(t, 10)
    orders = []
    for m in t["readers"][:2]:
        rs = list(Read.objects.filter(reader=m, session=1).order_by("order_key"))
        for r in rs:
            assert r.order_key == services.worklist_order_key(t["trial"], m.pk, r.case_id, r.session)
        orders.append([r.case_id for r in rs])
    assert orders[0] != orders[1]
    assert sorted(orders[0]) == sorted(orders[1])


def test_ai_read_appears_only_when_its_draft_is_ready():
    t = make_trial(code="AR1", centers=1)
    (case,) = add_cases(t, 1)
    ai_read = Read.objects.get(case=case, arm=t["arms"]["ai_assisted"])
    un_read = Read.objects.get(case=case, arm=t["arms"]["unassisted"])
    draft = Draft.objects.get(case=case)
    assert draft.status == Draft.Status.QUEUED
    assert list(selectors.worklist_for(ai_read.reader.user, t["trial"])) == []
    assert list(selectors.worklist_for(un_read.reader.user, t["trial"])) == [un_read]
    with pytest.raises(trial_services.Conflict):
        services.open_read(ai_read.reader.user, ai_read)
    ready_draft(case, arm_model_version(t["arms"]["ai_assisted"]))
    assert list(selectors.worklist_for(ai_read.reader.user, t["trial"])) == [ai_read]


def _complete(trial) -> dict:
    return {"findings_text": "Clear lungs.", "impression_text": "Normal.",
            "finding_marks": {c: {"present": False, "confidence": 4} for c in trial.finding_codes}}
