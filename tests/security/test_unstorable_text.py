"""Text PostgreSQL cannot store (a NUL, a lone surrogate; core.errors.storable_text) in arena comments and in the
reasons of amendments (reads, ratings, arena judgements): a clear 400 through the API and the form pages, never a
500, and nothing saved. Report text and rating comments: tests/reading/test_light_lane.py."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from rating import services as rating_services
from rating.models import ArenaAmendment, ArenaTask, Rating, RatingAmendment
from reading import services as reading_services
from reading.models import ReadAmendment
from tests.factories.imaging import add_image
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial
from tests.rating.arena_support import arena_trial, tasks_of

pytestmark = pytest.mark.django_db

NUL, SURROGATE = "a\u0000b", "a\ud800b"
UNSTORABLE = "cannot be stored"  # the words of the 400 (a NUL or a lone surrogate)


def _api(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def _page(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _post_json(api: APIClient, url: str, body: dict):
    """The body as JSON text with \\u escapes (a lone surrogate cannot be encoded as UTF-8, so the test client
    cannot send it raw; a browser's JSON.stringify escapes it the same way)."""
    return api.post(url, data=json.dumps(body), content_type="application/json")


def _refused(r, *, words: str = UNSTORABLE) -> None:
    assert r.status_code == 400, (r.status_code, r.content[:300])
    assert words in r.content.decode()


@pytest.fixture
def arena(db):
    t = arena_trial(code="UNSA", versions=2, cases=1, experts=2, panel=2)
    add_image(t["cases"][0])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    t["task"], t["user"] = tasks_of(t["experts"][0])[0], t["experts"][0].user
    return t


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_arena_comment_autosave_and_submit_refuse_unstorable_text(arena, bad):
    code, task, api = arena["trial"].code, arena["task"], _api(arena["user"])
    for name in ("arena-autosave", "arena-submit"):
        _refused(_post_json(api, reverse(name, args=[code, task.public_id]), {"preference": "A", "comment": bad}))
    task.refresh_from_db()
    assert task.comment == "" and task.status != ArenaTask.Status.DONE


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_arena_amendment_reason_and_comment_refuse_unstorable_text_through_the_api(arena, bad):
    code, task, api = arena["trial"].code, arena["task"], _api(arena["user"])
    rating_services.submit_arena_task(arena["user"], task, {"preference": "A"})
    url = reverse("arena-amend", args=[code, task.public_id])
    _refused(_post_json(api, url, {"preference": "B", "reason": bad}))
    _refused(_post_json(api, url, {"comment": bad, "reason": "fine"}))
    assert not ArenaAmendment.objects.exists()


def test_arena_amendment_page_refuses_a_nul_in_reason_or_comment(arena):
    code, task, page = arena["trial"].code, arena["task"], _page(arena["user"])
    rating_services.submit_arena_task(arena["user"], task, {"preference": "A"})
    url = reverse("arena:amend", args=[code, task.public_id])
    _refused(page.post(url, {"preference": "B", "reason": NUL}))
    _refused(page.post(url, {"comment": NUL, "reason": "fine"}))
    assert not ArenaAmendment.objects.exists()
    assert page.post(url, {"preference": "B", "reason": "fine"}).status_code == 302  # the page still works


@pytest.fixture
def rated(db):
    t = rating_trial(code="UNSR", experts=2, panel=2, cases=1, ai_model=True)
    complete_case(t["cases"][0])
    t["rating"] = Rating.objects.filter(case=t["cases"][0], expert=t["experts"][0]).get()
    t["user"] = t["experts"][0].user
    rating_services.submit_rating(t["user"], t["rating"], GOOD)
    return t


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_rating_amendment_reason_refuses_unstorable_text_through_the_api(rated, bad):
    url = reverse("rating-amend", args=[rated["trial"].code, rated["rating"].public_id])
    _refused(_post_json(_api(rated["user"]), url, {"preference": "none", "reason": bad}))
    _refused(_post_json(_api(rated["user"]), url, {"comment": bad, "reason": "fine"}))
    assert not RatingAmendment.objects.exists()


def test_rating_amendment_page_refuses_a_nul_in_the_reason(rated):
    page = _page(rated["user"])
    url = reverse("rating:amend", args=[rated["trial"].code, rated["rating"].public_id])
    _refused(page.post(url, {"preference": "none", "reason": NUL}))
    _refused(page.post(url, {"comment": NUL, "reason": "fine"}))
    assert not RatingAmendment.objects.exists()
    assert page.post(url, {"preference": "none", "reason": "fine"}).status_code == 302


@pytest.fixture
def submitted(db):
    t = make_trial(code="UNSD")
    with_images_and_drafts(t, add_cases(t, 2))
    m = reader_in(t, "unassisted")
    read = reading_services.open_read(m.user, reads_of(m).first())
    report = {"findings_text": "Clear lungs.", "impression_text": "Normal chest.",
              "finding_marks": {c: {"present": False, "confidence": 4} for c in t["trial"].finding_codes}}
    t["read"], _ = reading_services.submit_read(m.user, read, report)
    t["user"], t["report"] = m.user, report
    return t


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_read_amendment_reason_refuses_unstorable_text_through_the_api(submitted, bad):
    url = reverse("reading-api:amend", args=[submitted["read"].public_id])
    body = {**submitted["report"], "impression_text": "Changed.", "reason": bad}
    _refused(_post_json(_api(submitted["user"]), url, body))
    assert not ReadAmendment.objects.exists()


def test_read_amendment_page_refuses_a_nul_in_the_reason(submitted):
    trial, read = submitted["trial"], submitted["read"]
    form = {"findings_text": "Clear lungs.", "impression_text": "Changed.",
            **{f"present_{c}": "absent" for c in trial.finding_codes},
            **{f"confidence_{c}": "4" for c in trial.finding_codes}}
    page = _page(submitted["user"])
    url = reverse("reading:amend", args=[trial.code, read.public_id])
    _refused(page.post(url, {**form, "reason": NUL}))
    assert not ReadAmendment.objects.exists()
    assert page.post(url, {**form, "reason": "fine"}).status_code == 302
