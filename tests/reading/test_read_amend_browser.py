"""Amending a submitted read in the browser (issue 18): from the worklist's Amend link, a change without a reason is
refused on the page and nothing is stored; with one it is saved and shown in the history."""
from __future__ import annotations

import pytest
from django.urls import reverse

from reading import services
from reading.models import ReadAmendment
from tests.browser import assert_accessible, login, screenshot
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.requirement("AMD-1")]


def test_the_reader_amends_a_submitted_read_with_a_reason(live_server, page):
    t = make_trial(code="BAMD", centers=1)
    with_images_and_drafts(t, add_cases(t, 1))
    m = reader_in(t, "unassisted")
    read = services.open_read(m.user, reads_of(m).first())
    marks = {c: {"present": False, "confidence": 4} for c in t["trial"].finding_codes}
    read, _ = services.submit_read(m.user, read, {"findings_text": "Clear lungs.", "impression_text": "Normal chest.",
                                                  "finding_marks": marks})
    login(page, live_server, m.user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:worklist", args=["BAMD"]))
    page.click("text=Amend")
    page.wait_for_selector("#amend-form")
    assert page.input_value("#impression_text") == "Normal chest."
    page.fill("#impression_text", "Right basal consolidation.")
    code = t["trial"].finding_codes[0]
    page.check(f"input[name=present_{code}][value=present]")
    page.click("#amend-submit")
    page.wait_for_selector("#amend-error")
    assert "reason" in page.inner_text("#amend-error").lower()
    assert page.input_value("#impression_text") == "Right basal consolidation."  # what was entered is kept
    assert not ReadAmendment.objects.exists()

    page.fill("#reason", "Missed the basal opacity on second look.")
    page.click("#amend-submit")
    page.wait_for_selector("#amendment-1")
    assert "Missed the basal opacity" in page.inner_text("#amendment-1")
    assert "Right basal consolidation." in page.inner_text("#amendment-1")
    assert ReadAmendment.objects.get(read=read).amended["impression_text"] == "Right basal consolidation."
    assert "draft" not in page.content().lower()
    assert_accessible(page, "the read amendment page with its history")
    screenshot(page, "read-amend")
