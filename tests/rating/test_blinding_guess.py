"""Measuring blinding (issue 14, docs/design.md section 5): when the trial asks, the expert answers "Which report do
you think was written with AI assistance? A / B / don't know" with each rating; page, API and validation."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from analysis.export import build_export
from core.errors import InvalidInput
from rating import selectors as rating_selectors
from rating import services as rating_services
from rating.models import Rating
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.factories.trial import PASSWORD
from trial import services
from trial.models import Trial


@pytest.fixture
def asked(db):
    t = rating_trial(code="BG", experts=2, panel=2, cases=1, ask_blinding_guess=True)
    complete_case(t["cases"][0])
    t["rating"] = Rating.objects.select_related("case__trial").get(case=t["cases"][0], expert=t["experts"][0])
    t["expert"] = t["experts"][0].user
    return t


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_question_is_asked_and_required(asked):
    payload = rating_selectors.task_payload(asked["rating"])
    assert payload["guess"]["asked"] is True
    assert payload["guess"]["question"] == "Which report do you think was written with AI assistance?"
    assert [c["value"] for c in payload["guess"]["choices"]] == ["A", "B", "dont_know"]
    with pytest.raises(InvalidInput, match="written with AI assistance"):
        rating_services.submit_rating(asked["expert"], asked["rating"], GOOD)
    with pytest.raises(InvalidInput, match="A, B or dont_know"):
        rating_services.submit_rating(asked["expert"], asked["rating"], {**GOOD, "blinding_guess": "maybe"})
    saved = rating_services.autosave_rating(asked["expert"], asked["rating"], {"blinding_guess": "b"})
    assert saved.blinding_guess == "B"
    r, created = rating_services.submit_rating(
        asked["expert"], asked["rating"], {**GOOD, "blinding_guess": "Don't know"}
    )
    assert created and Rating.objects.get(pk=r.pk).blinding_guess == "dont_know"


def test_the_api_takes_the_answer(asked):
    api = _api(asked["expert"])
    args = [asked["trial"].code, asked["rating"].public_id]
    url, submit = reverse("rating-task", args=args), reverse("rating-submit", args=args)
    missing = api.post(submit, GOOD, format="json")
    assert missing.status_code == 400 and "AI assistance" in missing.json()["detail"]
    ok = api.post(submit, {**GOOD, "blinding_guess": "A"}, format="json")
    assert ok.status_code == 200
    assert api.get(url).json()["answer"]["blinding_guess"] == "A"


def test_the_page_shows_the_question_and_the_form_submits_it(asked):
    c = Client()
    assert c.login(username=asked["expert"].username, password=PASSWORD)
    url = reverse("rating:task", args=[asked["trial"].code, asked["rating"].public_id])
    html = c.get(url).content.decode()
    assert "Which report do you think was written with AI assistance?" in html
    assert 'name="blinding_guess" value="dont_know"' in html
    r = c.post(url, {**{k: str(v) for k, v in GOOD.items()}, "blinding_guess": "B"})
    assert r.status_code == 302
    assert Rating.objects.get(pk=asked["rating"].pk).blinding_guess == "B"


def test_not_asked_unless_the_trial_says_so(db):
    t = rating_trial(code="BN", experts=2, panel=2, cases=1)
    complete_case(t["cases"][0])
    rating = Rating.objects.get(case=t["cases"][0], expert=t["experts"][0])
    assert rating_selectors.task_payload(rating)["guess"] == {"asked": False, "question": "", "choices": []}
    expert = t["experts"][0].user
    with pytest.raises(InvalidInput, match="does not ask"):
        rating_services.submit_rating(expert, rating, {**GOOD, "blinding_guess": "A"})
    r, created = rating_services.submit_rating(expert, rating, GOOD)
    assert created and r.blinding_guess == ""
    c = Client()
    assert c.login(username=expert.username, password=PASSWORD)
    page = c.get(reverse("rating:task", args=[t["trial"].code, rating.public_id]))
    assert "AI assistance" not in page.content.decode()


def test_the_answers_are_exported_only_after_lock(asked):
    rating_services.submit_rating(asked["expert"], asked["rating"], {**GOOD, "blinding_guess": "A"})
    before = build_export(asked["trial"])
    assert "blinding_guess" not in before.tables["ratings"][0]
    trial = services.lock_trial(asked["coordinator"], Trial.objects.get(pk=asked["trial"].pk), reason="test")
    rows = build_export(trial).tables["ratings"]
    assert {r["blinding_guess"] for r in rows if r["rating_id"] == asked["rating"].public_id} == {"A"}


def test_a_single_report_is_asked_whether_it_was_ai_assisted(db):
    t = rating_trial(code="BS", design=Trial.Design.CASE_RANDOMISED, experts=2, panel=2, cases=1,
                     ask_blinding_guess=True)
    complete_case(t["cases"][0])
    rating = Rating.objects.select_related("case__trial").filter(case=t["cases"][0]).first()
    assert rating.read_b_id is None
    guess = rating_selectors.task_payload(rating)["guess"]
    assert guess["question"] == "Do you think this report was written with AI assistance?"
    assert [c["value"] for c in guess["choices"]] == ["A", "not_a", "dont_know"]
    expert = rating.expert.user
    with pytest.raises(InvalidInput, match="whether the report"):
        rating_services.submit_rating(expert, rating, {"quality_a": 4})
    with pytest.raises(InvalidInput, match="not_a"):
        rating_services.submit_rating(expert, rating, {"quality_a": 4, "blinding_guess": "B"})
    r, _ = rating_services.submit_rating(expert, rating, {"quality_a": 4, "blinding_guess": "no"})
    assert Rating.objects.get(pk=r.pk).blinding_guess == "not_a"
