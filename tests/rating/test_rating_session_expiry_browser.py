"""A session that ends mid-rating (issue 17): autosave says the session ended (it said "Offline" though the network
was fine), the expert signs in again in place, the answer is saved and then submitted with the new CSRF token."""
from __future__ import annotations

import pytest
from django.urls import reverse

from rating.models import Rating
from tests.browser import assert_accessible, end_session, login, url_name
from tests.factories.imaging import add_drawn_image
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.trial import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_session_ends_mid_rating_and_the_expert_signs_in_again_in_place(live_server, page):
    t = rating_trial(code="EXPT", experts=1, panel=1, cases=1)
    add_drawn_image(t["cases"][0])
    complete_case(t["cases"][0])
    task = tasks_of(t)[0]
    expert = t["experts"][0].user
    login(page, live_server, expert.username, PASSWORD)
    page.goto(live_server.url + reverse("rating:task", args=[t["trial"].code, task.public_id]))
    page.wait_for_selector("#viewer canvas")
    page.check("input[name=preference][value=B]")
    page.wait_for_function("document.getElementById('save-state').textContent === 'Saved'")

    end_session(page)
    page.check("input[name=quality_a][value='2']")
    page.locator("#session-ended").wait_for(state="visible")
    page.wait_for_function("document.getElementById('save-state').textContent.startsWith('Session ended')")
    assert "Offline" not in page.inner_text("body")
    assert_accessible(page, "the page with the sign-in-again panel")
    page.check("input[name=quality_b][value='5']")  # still answering while signed out
    page.fill("#comment", "Typed while signed out.")
    assert page.inner_text("#save-state").startswith("Session ended")
    page.click("#submit-rating")
    page.wait_for_function("document.getElementById('form-error').textContent.startsWith('Your session has ended')")
    task.refresh_from_db()
    assert (task.preference, task.quality_a) == ("B", None)

    page.fill("#session-ended input[name=password]", PASSWORD)
    page.click("#session-ended button[type=submit]")
    page.locator("#session-ended").wait_for(state="detached")
    page.wait_for_function("document.getElementById('save-state').textContent === 'Saved'")
    task.refresh_from_db()
    assert (task.preference, task.quality_a, task.quality_b, task.comment) == ("B", 2, 5, "Typed while signed out.")
    assert page.inner_text("#form-error") == ""

    page.click("#submit-rating")
    page.wait_for_url(lambda u: url_name(u) == "rating:worklist")
    task.refresh_from_db()
    assert task.status == Rating.Status.DONE
