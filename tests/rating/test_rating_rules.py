"""The expert's side: double rating, concurrent submits, lock, other experts' tasks, invalid scores, autosave
and resume (issue 6). Clear answers, exactly one stored rating."""
import threading

import pytest
from django.db import connection, connections
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import Conflict, InvalidInput, NotAllowed, TrialLocked
from rating import selectors as rating_selectors
from rating import services as rating_services
from rating.models import Rating
from reading.models import Read
from tests.factories.rating import GOOD, complete_case, rating_trial, submit_read
from tests.factories.trial import PASSWORD
from trial import services
from trial.models import AuditEntry


@pytest.fixture
def rt(db):
    t = rating_trial(code="RR", experts=2, panel=2, cases=2)
    for c in t["cases"]:
        complete_case(c)
    t["rating"] = Rating.objects.filter(case=t["cases"][0], expert=t["experts"][0]).get()
    t["other"] = Rating.objects.filter(case=t["cases"][0], expert=t["experts"][1]).get()
    t["expert"] = t["experts"][0].user
    return t


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def url(t, rating, action=""):
    return reverse(f"rating-{action or 'task'}", args=[t["trial"].code, rating.public_id])


def submits(rating) -> int:
    return AuditEntry.objects.filter(action="rating:submit", object_id=str(rating.pk)).count()


# -- double rating ------------------------------------------------------------------------------------------
def test_double_rating_is_answered_clearly_and_stored_once(rt):
    api = api_for(rt["expert"])
    r1 = api.post(url(rt, rt["rating"], "submit"), GOOD, format="json")
    assert r1.status_code == 200 and r1.json()["already_submitted"] is False
    again = api.post(url(rt, rt["rating"], "submit"), GOOD, format="json")  # a retried request
    assert again.status_code == 200 and again.json()["already_submitted"] is True
    changed = api.post(url(rt, rt["rating"], "submit"), {**GOOD, "preference": "B"}, format="json")
    assert changed.status_code == 409 and changed.json()["code"] == "already_submitted"
    assert "already submitted" in changed.json()["detail"]
    late_save = api.post(url(rt, rt["rating"], "autosave"), {"quality_a": 1}, format="json")
    assert late_save.status_code == 409
    r = Rating.objects.get(pk=rt["rating"].pk)
    assert (r.status, r.preference, r.quality_a, r.quality_b) == ("done", "A", 4, 3)
    assert Rating.objects.filter(case=rt["rating"].case, expert=rt["rating"].expert).count() == 1
    assert submits(r) == 1


def test_double_rating_through_the_page_form(rt, client):
    client.login(username=rt["expert"].username, password=PASSWORD)
    page = reverse("rating:task", args=[rt["trial"].code, rt["rating"].public_id])
    r = client.post(page, GOOD, follow=True)
    assert r.status_code == 200 and b"Rating submitted." in r.content
    r = client.post(page, {**GOOD, "quality_a": "2"})
    assert r.status_code == 409 and b"already submitted" in r.content
    assert Rating.objects.get(pk=rt["rating"].pk).quality_a == 4
    assert submits(rt["rating"]) == 1


# -- concurrent submits -------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_store_exactly_one_rating():
    assert connection.vendor == "postgresql", "row locks are only meaningful on PostgreSQL"
    t = rating_trial(code="RCC", experts=2, panel=2, cases=1)
    complete_case(t["cases"][0])
    rating = Rating.objects.filter(expert=t["experts"][0]).get()
    user = t["experts"][0].user
    answers = [{"preference": p, "quality_a": q, "quality_b": 6 - q, "comment": f"thread {i}"}
               for i, (p, q) in enumerate([("A", 5), ("B", 2), ("none", 3), ("A", 4)] * 3)]
    barrier = threading.Barrier(len(answers))
    results, errors = [], []

    def worker(answer):
        try:
            barrier.wait()
            results.append(rating_services.submit_rating(user, Rating.objects.get(pk=rating.pk), answer))
        except Conflict as exc:
            errors.append(exc)
        except Exception as exc:  # anything else is a failure, reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(a,)) for a in answers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [type(e) for e in errors if not isinstance(e, Conflict)] == []
    assert sum(1 for _, created in results if created) == 1
    assert len(results) + len(errors) == len(answers)
    stored = Rating.objects.get(pk=rating.pk)
    winner = next(a for a in answers if a["comment"] == stored.comment)
    assert (stored.preference, stored.quality_a, stored.quality_b) == (
        winner["preference"], winner["quality_a"], winner["quality_b"])
    assert submits(stored) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_read_submits_make_the_panel_exactly_once():
    """Both reports of a case submitted at the same moment: neither misses the other, nothing is doubled."""
    t = rating_trial(code="RCR", experts=3, panel=2, cases=6)
    errors = []
    for case in t["cases"]:
        reads = list(Read.objects.filter(case=case))
        barrier = threading.Barrier(len(reads))

        def worker(read, barrier):
            try:
                barrier.wait()
                submit_read(read)
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker, args=(r, barrier)) for r in reads]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert errors == []
    for case in t["cases"]:
        assert Rating.objects.filter(case=case).count() == 2


# -- lock ---------------------------------------------------------------------------------------------------
def test_rating_after_lock_is_refused(rt, client):
    rating_services.autosave_rating(rt["expert"], rt["rating"], {"quality_a": 2})
    services.lock_trial(rt["coordinator"], rt["trial"], reason="database lock")
    with pytest.raises(TrialLocked):
        rating_services.submit_rating(rt["expert"], rt["rating"], GOOD)
    with pytest.raises(TrialLocked):
        rating_services.autosave_rating(rt["expert"], rt["rating"], {"quality_a": 3})
    api = api_for(rt["expert"])
    r = api.post(url(rt, rt["rating"], "submit"), GOOD, format="json")
    assert r.status_code == 409 and r.json()["code"] == "trial_locked" and "locked" in r.json()["detail"]
    assert api.post(url(rt, rt["rating"], "autosave"), {"quality_a": 5}, format="json").status_code == 409
    client.login(username=rt["expert"].username, password=PASSWORD)
    page = client.get(reverse("rating:task", args=[rt["trial"].code, rt["rating"].public_id]))
    assert page.status_code == 200 and b"locked" in page.content and b'id="submit-rating"' not in page.content
    r = Rating.objects.get(pk=rt["rating"].pk)
    assert r.status == "in_progress" and r.quality_a == 2 and r.submitted_at is None
    assert submits(r) == 0


# -- other experts' tasks and other roles -------------------------------------------------------------------
def test_an_expert_cannot_open_another_experts_task(rt, client):
    other = rt["other"]
    api = api_for(rt["expert"])
    for action in ("", "open", "autosave", "submit"):
        method = api.get if action == "" else api.post
        r = method(url(rt, other, action), GOOD, format="json") if action else method(url(rt, other))
        assert r.status_code == 404, action
        assert other.expert.user.username not in r.content.decode()
    client.login(username=rt["expert"].username, password=PASSWORD)
    assert client.get(reverse("rating:task", args=[rt["trial"].code, other.public_id])).status_code == 404
    assert client.post(reverse("rating:task", args=[rt["trial"].code, other.public_id]),
                       GOOD).status_code == 404
    with pytest.raises(NotAllowed):
        rating_services.submit_rating(rt["expert"], other, GOOD)
    with pytest.raises(NotAllowed):
        rating_services.open_rating(rt["expert"], other)
    other.refresh_from_db()
    assert other.status == "todo" and other.opened_at is None and submits(other) == 0
    # An unknown id is the same 404.
    assert api.get(reverse("rating-task", args=[rt["trial"].code, "nope"])).status_code == 404


def test_non_experts_have_no_rating_worklist(rt, client):
    reader = rt["readers"][0].user
    client.login(username=reader.username, password=PASSWORD)
    assert client.get(reverse("rating:worklist", args=[rt["trial"].code])).status_code == 403
    assert api_for(reader).get(reverse("rating-worklist", args=[rt["trial"].code])).status_code == 403
    assert api_for(rt["coordinator"]).get(url(rt, rt["rating"])).status_code == 403
    assert APIClient().get(reverse("rating-worklist", args=[rt["trial"].code])).status_code == 401


# -- invalid scores -----------------------------------------------------------------------------------------
INVALID_SCORES = [0, 6, "text", "", None, 3.5, True, -1, "4; drop table"]


def test_invalid_scores_are_refused_clearly(rt):
    api = api_for(rt["expert"])
    for bad in INVALID_SCORES:
        r = api.post(url(rt, rt["rating"], "submit"), {**GOOD, "quality_a": bad}, format="json")
        assert r.status_code == 400 and r.json()["code"] == "invalid", bad
        assert "report A" in r.json()["detail"], bad
        r = api.post(url(rt, rt["rating"], "submit"), {**GOOD, "quality_b": bad}, format="json")
        assert r.status_code == 400 and "report B" in r.json()["detail"], bad
        if bad not in ("", None):  # blank is allowed while autosaving a partial answer
            r = api.post(url(rt, rt["rating"], "autosave"), {"quality_a": bad}, format="json")
            assert r.status_code == 400, bad
    for bad in (0, 6, "text"):
        r = api.post(url(rt, rt["rating"], "submit"), {**GOOD, "quality_a": bad}, format="json")
        assert r.json()["detail"].startswith("The quality score for report A must be a whole number from 1 to 5")
    rating = Rating.objects.get(pk=rt["rating"].pk)
    assert rating.status != "done" and rating.quality_a is None and submits(rating) == 0
    r = api.post(url(rt, rt["rating"], "submit"), GOOD, format="json")  # a valid answer still goes through
    assert r.status_code == 200 and Rating.objects.filter(pk=rt["rating"].pk, status="done").count() == 1


def test_other_invalid_answers(rt):
    api = api_for(rt["expert"])
    cases = [
        ({**GOOD, "preference": "C"}, "Preference must be A, B or none"),
        ({"quality_a": 3, "quality_b": 3}, "preference"),
        ({"preference": "A", "quality_b": 3}, "quality score for report A"),
        ({**GOOD, "arm": "x"}, "Unknown fields: arm"),
        ({**GOOD, "comment": "x" * 5001}, "too long"),
    ]
    for body, message in cases:
        r = api.post(url(rt, rt["rating"], "submit"), body, format="json")
        assert r.status_code == 400 and message in r.json()["detail"], (body, r.json())
    r = api.post(url(rt, rt["rating"], "submit"), ["not", "an", "object"], format="json")
    assert r.status_code == 400
    with pytest.raises(InvalidInput, match="whole number from 1 to 5"):
        rating_services.submit_rating(rt["expert"], rt["rating"], {**GOOD, "quality_a": "6"})
    assert Rating.objects.get(pk=rt["rating"].pk).status != "done"


# -- open, autosave, resume ---------------------------------------------------------------------------------
def test_open_autosave_resume_and_submit(rt, client):
    client.login(username=rt["expert"].username, password=PASSWORD)
    page = reverse("rating:task", args=[rt["trial"].code, rt["rating"].public_id])
    assert client.get(page).status_code == 200
    r = Rating.objects.get(pk=rt["rating"].pk)
    assert r.status == "in_progress" and r.opened_at is not None
    opened = r.opened_at
    api = api_for(rt["expert"])
    assert api.post(url(rt, r, "autosave"), {"preference": "b", "quality_b": "5"}, format="json").json() == {
        "saved": True, "status": "in_progress"}
    assert api.post(url(rt, r, "autosave"), {"comment": "half way"}, format="json").status_code == 200
    client.get(page)  # reopening resumes: opened_at unchanged, answer kept
    r.refresh_from_db()
    assert r.opened_at == opened and (r.preference, r.quality_b, r.comment) == ("B", 5, "half way")
    task = api.get(url(rt, r)).json()
    assert task["answer"] == {"preference": "B", "quality_a": None, "quality_b": 5, "comment": "half way",
                              "blinding_guess": None}
    resumed = client.get(page).content.decode()
    assert 'value="B" checked' in resumed and "half way" in resumed
    missing = api.post(url(rt, r, "submit"), {}, format="json")
    assert missing.status_code == 400 and "quality score for report A" in missing.json()["detail"]
    done = api.post(url(rt, r, "submit"), {"quality_a": 2}, format="json")  # completes the saved answer
    assert done.status_code == 200
    r.refresh_from_db()
    assert (r.status, r.preference, r.quality_a, r.quality_b) == ("done", "B", 2, 5)
    assert done.json()["next"] == rating_selectors.worklist_payload(rt["expert"], rt["trial"])["next"]


def test_worklist_shows_progress(rt, client):
    rating_services.submit_rating(rt["expert"], rt["rating"], GOOD)
    client.login(username=rt["expert"].username, password=PASSWORD)
    html = client.get(reverse("rating:worklist", args=[rt["trial"].code])).content.decode()
    assert "1</strong> of <strong>2</strong> rated" in html
    wl = api_for(rt["expert"]).get(reverse("rating-worklist", args=[rt["trial"].code])).json()
    assert wl["progress"]["total"] == 2 and wl["progress"]["done"] == 1 and wl["progress"]["percent"] == 50
    assert [t["position"] for t in wl["tasks"]] == [1, 2]
    assert {t["id"] for t in wl["tasks"]} == set(
        Rating.objects.filter(expert=rt["experts"][0]).values_list("public_id", flat=True))


def test_worklist_is_paginated_with_progress_next_and_positions_over_all_pages(rt, client, monkeypatch):
    monkeypatch.setattr(rating_selectors, "WORKLIST_PAGE_SIZE", 1)
    code = rt["trial"].code
    api = api_for(rt["expert"])
    worklist = reverse("rating-worklist", args=[code])
    first, second = api.get(worklist).json(), api.get(worklist, {"page": 2}).json()
    assert (first["page"], first["pages"], second["page"]) == (1, 2, 2)
    ids = [first["tasks"][0]["id"], second["tasks"][0]["id"]]
    assert [t["position"] for t in first["tasks"] + second["tasks"]] == [1, 2]
    assert first["progress"] == second["progress"] and first["progress"]["total"] == 2
    assert first["next"] == ids[0]
    # Done with the first task: "next" is the one on page 2; the task page knows its place in the whole list.
    first_task = Rating.objects.get(public_id=ids[0])
    rating_services.submit_rating(rt["expert"], first_task, GOOD)
    assert api.get(worklist, {"page": 2}).json()["next"] == ids[1]
    client.login(username=rt["expert"].username, password=PASSWORD)
    assert "page 1 of 2" in client.get(reverse("rating:worklist", args=[code])).content.decode()
    assert rating_selectors.position_of(rt["expert"], rt["trial"], Rating.objects.get(public_id=ids[1])) == 2


@pytest.mark.django_db(transaction=True)
def test_a_submit_completing_a_pair_does_not_block_other_audited_writes_of_the_trial():
    """Regression (found by benchmarks/load.py as deadlocks): making rating tasks locked the trial row FOR UPDATE
    through select_related, so every other audited write of the trial (an audit entry references the trial)
    waited for that submit, and a reader's write that held its own chain could deadlock with it."""
    assert connection.vendor == "postgresql", "row locks are only meaningful on PostgreSQL"
    t = rating_trial(code="RLK", experts=2, panel=2, cases=1)
    case = t["cases"][0]
    first, second = Read.objects.filter(case=case).order_by("pk")
    submit_read(first)
    holding, release, outcome = threading.Event(), threading.Event(), {}

    def complete_pair_and_hold():
        from django.db import transaction

        try:
            with transaction.atomic():
                submit_read(second)  # completes the pair: rating tasks are made in this transaction
                outcome["tasks"] = Rating.objects.filter(case=case).count()
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    th = threading.Thread(target=complete_pair_and_hold)
    th.start()
    try:
        assert holding.wait(10)
        from django.db import transaction

        from trial import audit

        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '2s'")
            other_reader = next(m for m in t["readers"] if m.pk not in (first.reader_id, second.reader_id))
            entry = audit.record(actor=other_reader.user, trial=t["trial"], action="note", object_type="x",
                                 object_id="1")
        assert entry.pk is not None
    finally:
        release.set()
        th.join()
    assert outcome["tasks"] == 2
