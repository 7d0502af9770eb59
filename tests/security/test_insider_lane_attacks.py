"""Insider attacks on the arm through the light lane and the rating panel (eighth session, helper attack): one
person holding several roles in a trial (memberships written around the services, which refuse them, as
trial/blinding.py assumes) tries to learn which arm a read was in, or which report of a rating pair came from the
AI arm.

Leaked, fixed: a reader who was also an expert was put on the rating panel of a case they had read themselves
(rating.services._create_tasks_locked chose among all experts): their own report was A or B, so the other was the
other arm, and they rated their own work. Now an expert who read (or holds a read of) the case is never on its
panel, in paired and crossover designs alike, at creation and at top-up. And a coordinator who also rated or read
saw every read's opened and submitted time on the case page and API (reader names hidden, but the timetable chained
each reader's reads): hidden from them now.

Held: the lane's answers (heartbeat, autosave, rating autosave) to someone probing another person's read or task
are one refusal, the same whatever the read's arm or state, and write nothing; the lane's success answers carry no
field that differs by arm; the rating payload carries no time, id or arm of the reads behind A and B."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.db import transaction
from django.urls import reverse

from rating import selectors as rating_selectors
from rating import services as rating_services
from rating.models import ArenaTask, Rating
from reading import services as reading_services
from reading.models import Read
from tests.clients import browser_client as _browser
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.reading import reader_in, reads_of
from tests.rating.arena_support import arena_trial
from trial.models import Membership, Trial
from trial.permissions import Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.requirement("BLD-1")]


@pytest.fixture(autouse=True)
def _no_drafts_task(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def _post(client, url: str, body: dict):
    return client.post(url, json.dumps(body), content_type="application/json")


def _snapshot():
    return (list(Read.objects.order_by("pk").values()), list(Rating.objects.order_by("pk").values()))


# -- the rating panel ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("design", [Trial.Design.PAIRED_BY_CASE, Trial.Design.CROSSOVER])
def test_a_reader_who_is_also_an_expert_never_rates_a_case_they_read(design):
    """Before: with one other expert and a panel of two, the reader+expert was always on the panel of the case
    they had read, their own report as A or B."""
    t = rating_trial(code="DUAL", design=design, cases=2, panel=2, experts=1, washout_days=0)
    case = t["cases"][0]
    read = Read.objects.filter(case=case, reader__isnull=False).select_related("reader__user").order_by("pk").first()
    assert read is not None
    dual = Membership.objects.create(user=read.reader.user, trial=t["trial"], role=Role.EXPERT,
                                     center=t["centers"][1])
    complete_case(case)
    tasks = Rating.objects.filter(case=case)
    assert tasks.exists()
    assert not tasks.filter(expert=dual).exists()
    readers_of_case = set(Read.objects.filter(case=case).values_list("reader__user_id", flat=True))
    assert not tasks.filter(expert__user_id__in=readers_of_case).exists()
    # The panel came out short (one other expert); a top-up (run when an expert joins) keeps the rule.
    assert tasks.count() == 1
    with transaction.atomic():
        rating_services.top_up_panels(t["trial"])
    assert not Rating.objects.filter(case=case, expert=dual).exists()


# -- the lane, probed by a coordinator who also rates ------------------------------------------------------------
def test_the_lane_answers_a_probe_of_someone_elses_read_alike_for_both_arms():
    """A coordinator+expert (or any second role) who learnt a read's public id probes it through the lane:
    heartbeat, autosave, autosave with box decisions (the path that loads the arm and draft). One answer (404, the
    same body, an unknown id's since the ninth session) for an AI read and an unassisted read, opened, unopened or
    submitted; nothing written."""
    t = rating_trial(code="PROBE", cases=3, panel=2, experts=2)
    complete_case(t["cases"][0])
    expert = t["experts"][0]
    Membership.objects.create(user=expert.user, trial=t["trial"], role=Role.COORDINATOR)
    un, ai = reader_in(t, "unassisted"), reader_in(t, "ai_assisted")
    for m in (un, ai):
        reading_services.open_read(m.user, reads_of(m).filter(opened_at__isnull=True).order_by("pk").first())
    targets = {
        "unassisted, open": reads_of(un).filter(opened_at__isnull=False).first(),
        "ai, open": reads_of(ai).filter(opened_at__isnull=False).first(),
        "unassisted, unopened": reads_of(un).filter(opened_at__isnull=True).first(),
        "ai, unopened": reads_of(ai).filter(opened_at__isnull=True).first(),
    }
    for r in Read.objects.filter(case=t["cases"][0]).select_related("arm"):
        targets[f"{r.arm.code}, submitted"] = r
    targets = {k: v for k, v in targets.items() if v is not None}
    assert {"ai, open", "unassisted, open", "ai_assisted, submitted", "unassisted, submitted"} <= set(targets)
    browser = _browser(expert.user)
    before = _snapshot()
    answers = {}
    for label, read in targets.items():
        for name, body in (("heartbeat", {"seconds": 5}), ("autosave", {"findings_text": "x", "seconds": 5}),
                           ("autosave", {"box_reviews": {"b1": "accepted"}})):
            r = _post(browser, reverse(f"reading-api:{name}", args=[read.public_id]), body)
            answers[(label, name, tuple(body))] = (r.status_code, r.content)
    assert {a for a in answers.values()} == {answers[("ai, open", "heartbeat", ("seconds",))]}, answers
    status, content = next(iter(answers.values()))
    assert status == 404 and json.loads(content)["detail"] == "No such read."
    # The full path's read endpoints (detail, open, submit) answer one refusal too, whatever the arm or state
    # (an AI read whose draft is not ready would otherwise say "not ready yet").
    full = set()
    for read in targets.values():
        full.add((browser.get(reverse("reading-api:detail", args=[read.public_id])).content,))
        for name in ("open", "submit"):
            r = _post(browser, reverse(f"reading-api:{name}", args=[read.public_id]), {})
            full.add((r.status_code, r.content))
    assert len(full) == 2 and all(b"No such read." in x[-1] for x in full), full
    # The read page and its amendment page: one answer for every arm and state (the CSRF token and the read's id,
    # which differ per request and per read, taken out).
    code = t["trial"].code
    pages = set()
    for read in targets.values():
        for name in ("reading:read", "reading:amend"):
            r = browser.get(reverse(name, args=[code, read.public_id]))
            body = re.sub(r'(csrfmiddlewaretoken" value|csrf-token" content)="[^"]*"', "", r.content.decode())
            pages.add((name, r.status_code, body.replace(read.public_id, "ID")))
    # The amendment page refuses a coordinator who also rates with the blinding message (they coordinate the
    # trial, so its reads are no secret to them); the read page answers as for an unknown id.
    assert sorted((n, s) for n, s, _ in pages) == [("reading:amend", 403), ("reading:read", 404)], pages
    assert _snapshot() == before


def test_the_rating_lane_answers_a_probe_of_another_experts_task_as_a_missing_one():
    t = rating_trial(code="PROBR", cases=2, panel=2, experts=2)
    complete_case(t["cases"][0])
    mine, theirs = tasks_of(t, 0)[0], tasks_of(t, 1)[0]
    user = mine.expert.user
    Membership.objects.create(user=user, trial=t["trial"], role=Role.COORDINATOR)
    browser = _browser(user)
    before = _snapshot()
    code = t["trial"].code
    a = _post(browser, reverse("rating-autosave", args=[code, theirs.public_id]), {"comment": "x"})
    b = _post(browser, reverse("rating-autosave", args=[code, "no-such-task"]), {"comment": "x"})
    assert a.status_code == b.status_code == 404 and a.json() == b.json()
    assert _snapshot() == before


# -- what the lane and the rating payload answer -----------------------------------------------------------------
def test_the_lanes_answers_and_the_rating_payload_carry_nothing_that_differs_by_arm():
    """A reader's own lane answers have the same keys and values (but the clock) in both arms; the expert's
    payload shows A and B with the same keys, no time, id, reader, draft or arm."""
    t = rating_trial(code="SHAPE", cases=3, panel=2, experts=2)
    complete_case(t["cases"][0])
    shapes = {}
    for arm in ("unassisted", "ai_assisted"):
        m = reader_in(t, arm)
        read = reading_services.open_read(m.user, reads_of(m).filter(opened_at__isnull=True).order_by("pk").first())
        Read.objects.filter(pk=read.pk).update(active_seconds=0, last_heartbeat_at=None)
        browser = _browser(m.user)
        beat = _post(browser, reverse("reading-api:heartbeat", args=[read.public_id]), {"seconds": 0})
        save = _post(browser, reverse("reading-api:autosave", args=[read.public_id]), {"findings_text": "Clear."})
        assert beat.status_code == save.status_code == 200 and "Allow" not in beat and "Allow" not in save
        body = save.json()
        body.pop("autosaved_at")
        shapes[arm] = (beat.json(), body, sorted(beat.headers), sorted(save.headers))
    assert shapes["unassisted"] == shapes["ai_assisted"]
    task = tasks_of(t, 0)[0]
    payload = rating_selectors.task_payload(Rating.objects.get(pk=task.pk))
    a, b = payload["reports"]
    assert a.keys() == b.keys() == {"label", "findings", "impression", "marks"}
    text = json.dumps(payload)
    for read in Read.objects.filter(case=task.case).select_related("arm", "reader__user"):
        for leak in (read.public_id, read.arm.code, read.reader.user.username,
                     read.submitted_at.isoformat()[:16] if read.submitted_at else "-"):
            assert leak not in text, leak


# -- the arena, for a reader who also rates ----------------------------------------------------------------------
def test_a_reader_who_is_also_an_expert_sees_no_arena_drafts_of_a_case_they_read():
    """An unassisted reader who is also an expert must not be shown the AI drafts of a case on their reading
    worklist (their read would no longer be unassisted), nor of a case they read."""
    t = arena_trial(code="ARX", versions=2, cases=2, experts=1, panel=2)
    read = (Read.objects.filter(case=t["cases"][0], arm__code="unassisted", reader__isnull=False)
            .select_related("reader__user").first())
    dual = Membership.objects.create(user=read.reader.user, trial=t["trial"], role=Role.EXPERT,
                                     center=t["centers"][1])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    shown = rating_selectors.arena_worklist(dual.user, t["trial"]).filter(case=read.case)
    assert not shown.exists()
    assert not ArenaTask.objects.filter(expert=dual, case=read.case).exists()  # not drawn for it at all
    assert ArenaTask.objects.filter(expert=dual).exists()  # the other case's drafts: not theirs to read
    # A task made before the person also became a reader of its case (a read reassigned later) is held back too
    other = ArenaTask.objects.filter(expert=dual).select_related("case").first()
    assert rating_selectors.arena_worklist(dual.user, t["trial"]).filter(case=other.case).exists()
    Read.objects.filter(pk__in=Read.objects.filter(case=other.case).values("pk")[:1]).update(reader=read.reader)
    assert not rating_selectors.arena_worklist(dual.user, t["trial"]).filter(case=other.case).exists()


# -- the reading timetable on the case page ----------------------------------------------------------------------
def test_a_blinded_coordinator_gets_no_read_times_on_the_case_page_or_api():
    """Before: a coordinator who also rated (or read) saw each read's opened and submitted time to the minute (page)
    or the microsecond (API). With reader names hidden, the times still chained each reader's reads (one submitted,
    the next opened moments later), rebuilding who read what, and so, cases being read once per arm, every read's
    arm group (docs/design.md section 5: no timestamp reaches an expert; the reader names were hidden for this)."""
    t = rating_trial(code="TIMES", cases=1, panel=2, experts=2)
    case = t["cases"][0]
    when = dt.datetime(2026, 3, 7, 13, 47, 29, 123456, tzinfo=dt.UTC)
    complete_case(case, when=when)
    user = tasks_of(t, 0)[0].expert.user
    Membership.objects.create(user=user, trial=t["trial"], role=Role.COORDINATOR)
    client = _browser(user)
    api = client.get(reverse("case-overview", args=[t["trial"].code, case.pk]))
    page = client.get(reverse("enrolment:case", args=[t["trial"].code, case.pk]))
    assert api.status_code == page.status_code == 200
    data = api.json()
    assert data["arm_hidden"] and len(data["reads"]) == 2
    assert all(r["opened_at"] is None and r["submitted_at"] is None for r in data["reads"])
    for stamp in ("2026-03-07", "13:47", "13:45"):
        assert stamp not in api.content.decode() and stamp not in page.content.decode(), stamp
    # The unblinded coordinator still sees them.
    full = _browser(t["coordinator"]).get(reverse("case-overview", args=[t["trial"].code, case.pk])).json()
    assert all(r["submitted_at"].startswith("2026-03-07T13:47") for r in full["reads"])
