"""Amending a submitted rating in the browser (issue 18): from the rating worklist's Amend link, a change without a
reason is refused on the page; with one it is saved and shown in the history, in A/B terms only."""
from __future__ import annotations

import pytest
from django.urls import reverse

from rating import services
from rating.models import Rating, RatingAmendment
from tests.browser import assert_accessible, login, screenshot
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.factories.trial import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.requirement("AMD-2")]


def test_the_expert_amends_a_submitted_rating_with_a_reason(live_server, page):
    t = rating_trial(code="BRAM", experts=1, panel=1, cases=1, ai_model=True)
    complete_case(t["cases"][0])
    rating = Rating.objects.get(case=t["cases"][0])
    expert = rating.expert.user
    services.submit_rating(expert, rating, GOOD)
    login(page, live_server, expert.username, PASSWORD)
    page.goto(live_server.url + reverse("rating:worklist", args=["BRAM"]))
    page.click("text=Amend")
    page.wait_for_selector("#amend-form")
    page.check("input[name=quality_b][value='1']")
    page.click("#amend-submit")
    page.wait_for_selector("#amend-error")
    assert "reason" in page.inner_text("#amend-error").lower()
    assert not RatingAmendment.objects.exists()

    page.check("input[name=quality_b][value='1']")
    page.fill("#reason", "Report B misses the effusion.")
    page.click("#amend-submit")
    page.wait_for_selector("#amendment-1")
    history = page.inner_text("#amendment-1")
    assert "Report B misses the effusion." in history and "1 · Unacceptable" in history
    assert RatingAmendment.objects.get(rating=rating).amended["quality_b"] == 1
    html = page.content().lower()
    for arm in t["arms"].values():
        assert arm.code.lower() not in html and arm.name.lower() not in html
    assert_accessible(page, "the rating amendment page with its history")
    screenshot(page, "rate-amend")
