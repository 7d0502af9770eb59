"""A session that ends mid-read (issue 17): the page says the session ended (not "Offline"), offers to sign in again
in place, keeps everything typed, saves it once signed in and then submits with the new session's CSRF token."""
from __future__ import annotations

import pytest
from django.urls import reverse

from reading.models import Read
from tests.browser import assert_accessible, end_session, login, resolved, url_name
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = "window.CXR_READ_OPTIONS = {beatMs: 1000, autosaveMs: 300};"


def test_session_ends_mid_read_and_the_reader_signs_in_again_in_place(live_server, page):
    t = make_trial(code="EXPR", centers=1)
    with_images_and_drafts(t, add_cases(t, 1))
    m = reader_in(t, "unassisted")
    page.add_init_script(FAST)
    login(page, live_server, m.user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:next", args=["EXPR"]))
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    read = Read.objects.get(public_id=resolved(page.url).kwargs["public_id"])
    page.fill("#findings_text", "Before expiry.")
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Saved')")

    end_session(page)
    page.fill("#findings_text", "Before expiry. Typed after the session ended.")
    panel = page.locator("#session-ended")
    panel.wait_for(state="visible")
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Session ended')")
    assert "Offline" not in page.inner_text("body")
    assert "Your session has ended" in panel.inner_text()
    assert_accessible(page, "the page with the sign-in-again panel")
    assert page.input_value("#session-ended input[name=username]") == m.user.username
    assert page.evaluate("document.activeElement.name") == "password"
    for code in t["trial"].finding_codes:  # keeps working while signed out: nothing is lost
        page.check(f"input[name=present_{code}][value=absent]")
        page.select_option(f"select[name=confidence_{code}]", "4")
    page.click("#submit-read")
    page.wait_for_function("document.getElementById('form-message').textContent.startsWith('Your session has ended')")
    assert Read.objects.get(pk=read.pk).findings_text == "Before expiry."

    page.fill("#session-ended input[name=password]", "wrong-password")
    page.click("#session-ended button[type=submit]")
    page.wait_for_function("document.querySelector('#session-ended .error').textContent.includes('did not match')")
    page.fill("#session-ended input[name=password]", PASSWORD)
    page.click("#session-ended button[type=submit]")
    panel.wait_for(state="detached")
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Saved')")
    assert page.input_value("#findings_text") == "Before expiry. Typed after the session ended."
    read.refresh_from_db()
    assert read.findings_text == "Before expiry. Typed after the session ended."
    assert all(mark["present"] is False for mark in read.finding_marks.values())  # marked while signed out

    page.click("#submit-read")  # the new session's CSRF token is in the page
    page.wait_for_function("document.getElementById('form-message').textContent === 'Report submitted.'")
    read.refresh_from_db()
    assert read.status == Read.Status.DONE and read.findings_text.endswith("Typed after the session ended.")
