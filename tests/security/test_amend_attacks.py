"""Attacks on the sixth session's coordinator amendment pages (rating:amend and reading:amend serve coordinators; the
case page links them) by a person holding two roles in one trial. The services refuse such memberships
(test_role_exclusivity.py); these are written around them, as trial/blinding.py's defence assumes.

The rule (docs/design.md section 5, one person one side): until lock, a coordinator who also reads or rates in the
trial amends only what is their own (their read, as its reader; their rating task, as its expert). Before this
file, an expert who was also coordinator opened the amendment page of every submitted read of the cases they rate
(the report text, its submission time and, on the case page, its reader), so matching the text against their A/B
pair told them which reader (and so which arm, readers being nested in arms) wrote report A; and another expert's
rating page showed that expert's answers and A/B order.
"""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import Conflict
from rating import services as rating_services
from rating.models import ArenaTask, Rating
from reading.models import Read
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.rating.arena_support import arena_trial
from trial import services as trial_services
from trial.models import Membership, Trial

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("BLD-1")]


@pytest.fixture
def rated(db):
    t = rating_trial(code="AMX", experts=2, panel=2, cases=2, ai_model=True)
    for c in t["cases"]:
        complete_case(c)
    case = t["cases"][0]
    t["mine"] = Rating.objects.get(case=case, expert=t["experts"][0])
    t["theirs"] = Rating.objects.get(case=case, expert=t["experts"][1])
    rating_services.submit_rating(t["experts"][0].user, t["mine"], GOOD)
    rating_services.submit_rating(t["experts"][1].user, t["theirs"],
                                  {**GOOD, "comment": "Zanzibar-sentinel comment of the other expert"})
    t["reads"] = list(Read.objects.filter(case=case).select_related("reader__user", "arm"))
    return t


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(type(user).objects.get(pk=user.pk))
    return api


def _amend_body(trial) -> dict:
    marks = {c: {"present": True, "confidence": 3} for c in trial.finding_codes}
    return {"reason": "attack", "report": {"findings_text": "Changed.", "impression_text": "Changed.",
                                           "finding_marks": marks}}


def test_expert_who_is_also_coordinator_cannot_open_the_reads_they_rate(rated):
    t = rated
    expert = t["experts"][0].user
    Membership.objects.create(user=expert, trial=t["trial"], role="coordinator")
    code, c, api = t["trial"].code, _client(expert), _api(expert)
    texts = [r.findings_text for r in t["reads"]]
    for read in t["reads"]:
        url = reverse("reading:amend", args=[code, read.public_id])
        page = c.get(url)
        assert page.status_code == 403, read.arm.code
        html = page.content.decode()
        assert not any(x in html for x in texts) and read.reader.user.username not in html
        assert c.post(url, {"reason": "x", "findings_text": "Changed."}).status_code == 403
        r = api.post(reverse("reading-api:amend", args=[read.public_id]), _amend_body(t["trial"]), format="json")
        assert r.status_code == 403 and not any(x in r.content.decode() for x in texts)
    assert not Read.objects.filter(findings_text="Changed.").exists()
    assert all(not r.amendments.exists() for r in t["reads"])
    # The case page links no amendment page to them; their own rating task stays theirs to amend.
    case_page = c.get(reverse("enrolment:case", args=[code, t["cases"][0].pk])).content.decode()
    assert "/amend/" not in case_page
    assert c.get(reverse("rating:amend", args=[code, t["mine"].public_id])).status_code == 200


def test_expert_who_is_also_coordinator_cannot_see_another_experts_rating(rated):
    t = rated
    expert = t["experts"][0].user
    Membership.objects.create(user=expert, trial=t["trial"], role="coordinator")
    code, theirs = t["trial"].code, t["theirs"]
    page = _client(expert).get(reverse("rating:amend", args=[code, theirs.public_id]))
    assert page.status_code == 404  # as to any expert: another expert's task is not revealed to exist
    assert "Zanzibar-sentinel" not in page.content.decode()
    r = _api(expert).post(reverse("rating-amend", args=[code, theirs.public_id]),
                          {"preference": "B", "quality_a": 1, "quality_b": 5, "reason": "attack"}, format="json")
    assert r.status_code == 404 and "Zanzibar-sentinel" not in r.content.decode()
    theirs.refresh_from_db()
    assert theirs.preference == GOOD["preference"] and not theirs.amendments.exists()


def test_reader_who_is_also_coordinator_amends_only_their_own_read(rated):
    t = rated
    own, other = t["reads"][0], t["reads"][1]
    reader = own.reader.user
    Membership.objects.create(user=reader, trial=t["trial"], role="coordinator")
    code, c = t["trial"].code, _client(reader)
    page = c.get(reverse("reading:amend", args=[code, other.public_id]))
    assert page.status_code == 403 and other.findings_text not in page.content.decode()
    assert other.arm.name not in page.content.decode()
    assert c.get(reverse("rating:amend", args=[code, t["mine"].public_id])).status_code == 403
    mine = c.get(reverse("reading:amend", args=[code, own.public_id]))
    assert mine.status_code == 200 and own.findings_text in mine.content.decode()


def test_single_role_coordinator_still_amends_and_the_guard_lifts_at_lock(rated):
    t = rated
    code, read = t["trial"].code, t["reads"][0]
    coordinator = _client(t["coordinator"])
    assert coordinator.get(reverse("reading:amend", args=[code, read.public_id])).status_code == 200
    assert coordinator.get(reverse("rating:amend", args=[code, t["theirs"].public_id])).status_code == 200
    expert = t["experts"][0].user
    Membership.objects.create(user=expert, trial=t["trial"], role="coordinator")
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    assert Trial.objects.get(pk=t["trial"].pk).is_locked
    page = _client(expert).get(reverse("reading:amend", args=[code, read.public_id]))
    assert page.status_code == 200 and "locked" in page.content.decode()  # read-only after lock, arms named


def test_analysis_run_row_history_refused_to_a_blinded_coordinator(world):
    """The sixth session's analysis-run rows (summary, output folder, arms_masked) on the Row history page: the same
    access as the page's other tables, so an expert or reader who is also coordinator gets 403, before lock."""
    for who in ("expert", "un_reader"):
        user = world[who].user
        Membership.objects.create(user=user, trial=world["trial"], role="coordinator")
        page = _client(user).get(reverse("trial:row_history", args=[world["trial"].code]),
                                 {"table": "analysis.AnalysisRun"})
        assert page.status_code == 403, who
        assert "pm-1" not in page.content.decode()
    ok = _client(world["coordinator"]).get(reverse("trial:row_history", args=[world["trial"].code]),
                                           {"table": "analysis.AnalysisRun"})
    assert ok.status_code == 200 and "analysis/pm-1" in ok.content.decode()


def test_case_page_row_order_does_not_name_the_readers_arms_to_a_blinded_coordinator(rated):
    """Before: with the arm column hidden, the case page (and its API) still listed a paired case's reads in the
    order they were made, the trial's arm order, so row 1's reader was always in the first arm: every reader's
    allocation, told to an expert or reader who is also coordinator. Now such a coordinator gets the reads in
    random public-id order and no reader's name at all (an expert learns no reader's identity before lock). Read
    public ids are set here so that the creation order and the id order disagree on one case and agree on the
    other; the rows' sessions and statuses are all the page still shows of each read."""
    t = rated
    expert = t["experts"][0].user
    Membership.objects.create(user=expert, trial=t["trial"], role="coordinator")
    c = _client(expert)
    for i, case in enumerate(t["cases"]):
        reads = list(Read.objects.filter(case=case).select_related("reader__user", "arm").order_by("pk"))
        ids = ["b" * 20, "a" * 20] if i == 0 else ["a" * 21, "b" * 21]  # case 0: made first, sorts last
        for read, new_id in zip(reads, ids, strict=True):
            Read.objects.filter(pk=read.pk).update(public_id=new_id)
        html = c.get(reverse("enrolment:case", args=[t["trial"].code, case.pk])).content.decode()
        assert html.count('data-read-status="') == len(reads)
        for r in reads:
            assert r.reader.user.username not in html
        assert "ai_assisted" not in html and "hidden" in html
        api = _api(expert).get(reverse("case-overview", args=[t["trial"].code, case.pk]))
        assert api.status_code == 200, api.content
        body = api.content.decode()
        assert all(r.reader.user.username not in body for r in reads) and "ai_assisted" not in body
        assert [row["reader"] for row in api.json()["reads"]] == ["hidden"] * len(reads)
    # The unblinded coordinator keeps the creation order, with the readers named.
    html = _client(t["coordinator"]).get(reverse("enrolment:case", args=[t["trial"].code, t["cases"][0].pk]))
    reads = list(Read.objects.filter(case=t["cases"][0]).select_related("reader__user").order_by("pk"))
    text = html.content.decode()
    assert text.index(reads[0].reader.user.username) < text.index(reads[1].reader.user.username)


# -- the standalone arena (merged from wip-arena) --------------------------------------------------------------------
def test_an_expert_who_reads_the_arena_drafts_through_the_api_can_no_longer_amend_the_rating(db):
    """Before: the arena API's task GET returned the case's drafts without stamping opened_at, so an expert could
    read them (they tell which reader report was AI-assisted), then amend their reader-pair rating of the case: the
    service's "arena_seen" rule looked at opened_at only. Now the GET stamps it, and an answered task counts too."""
    t = arena_trial(code="AAX", versions=2, cases=1, experts=2, panel=2)
    complete_case(t["cases"][0])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    expert = t["experts"][0]
    rating = Rating.objects.get(case=t["cases"][0], expert=expert)
    rating_services.submit_rating(expert.user, rating, GOOD)
    task = ArenaTask.objects.get(case=t["cases"][0], expert=expert)
    r = _api(expert.user).get(reverse("arena-task", args=[t["trial"].code, task.public_id]))
    assert r.status_code == 200 and r.json()["drafts"][0]["findings"]  # the drafts were received
    task.refresh_from_db()
    assert task.opened_at is not None
    with pytest.raises(Conflict, match="arena"):
        rating_services.amend_rating(actor=expert.user, rating=rating, answer={"quality_a": 1}, reason="second look")
    page = _client(expert.user).post(reverse("rating:amend", args=[t["trial"].code, rating.public_id]),
                                     {"preference": "B", "quality_a": "1", "quality_b": "5", "reason": "x"})
    assert page.status_code == 409 and not rating.amendments.exists()


def test_an_arena_answer_without_opening_also_blocks_the_experts_amendment(db):
    t = arena_trial(code="AAY", versions=2, cases=1, experts=2, panel=2)
    complete_case(t["cases"][0])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    expert = t["experts"][1]
    rating = Rating.objects.get(case=t["cases"][0], expert=expert)
    rating_services.submit_rating(expert.user, rating, GOOD)
    task = ArenaTask.objects.get(case=t["cases"][0], expert=expert)
    r = _api(expert.user).post(reverse("arena-autosave", args=[t["trial"].code, task.public_id]),
                               {"preference": "A"}, format="json")
    assert r.status_code == 200
    ArenaTask.objects.filter(pk=task.pk).update(opened_at=None)  # as if no open had been recorded
    with pytest.raises(Conflict, match="arena"):
        rating_services.amend_rating(actor=expert.user, rating=rating, answer={"quality_a": 1}, reason="x")
