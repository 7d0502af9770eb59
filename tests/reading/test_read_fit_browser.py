"""The read page on a laptop screen (issue 17): at 1280x720 the whole form (six findings and Submit) is in view
without scrolling; a refused submit shows its message in view, beside Submit, and moves focus to the first field at
fault."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser import LAPTOP, assert_in_view, login, screenshot, url_name
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open_read(live_server, page, code: str, arm: str):
    t = make_trial(code=code, centers=1)
    with_images_and_drafts(t, add_cases(t, 1), size=512)
    m = reader_in(t, arm)
    page.set_viewport_size(LAPTOP)
    login(page, live_server, m.user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:next", args=[code]))
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")
    return t


def _focused(page) -> dict:
    return page.evaluate("({name: document.activeElement.name, value: document.activeElement.value || ''})")


def test_the_ai_arm_form_fits_a_laptop_screen(live_server, page):
    t = _open_read(live_server, page, "FITA", "ai_assisted")
    assert page.locator(".assist-banner").is_visible()  # the taller of the two arms' forms
    # The draft pre-fills the present/absent choices (p >= 0.5 present); the confidences are the reader's to give
    assert page.is_checked("input[name=present_pleural_effusion][value=present]")  # 87%
    assert page.is_checked("input[name=present_pneumothorax][value=absent]")  # 4%
    assert all(page.input_value(f"select[name=confidence_{c}]") == "" for c in t["trial"].finding_codes)
    assert page.evaluate("window.scrollY") == 0
    for code in t["trial"].finding_codes:
        assert_in_view(page, f"tr[data-code={code}]")
        assert_in_view(page, f"select[name=confidence_{code}]")
    assert_in_view(page, "#findings_text")
    assert_in_view(page, "#submit-read")
    screenshot(page, "read-ai-1280x720")


def test_a_refused_submit_says_why_in_view_and_focuses_the_first_field_at_fault(live_server, page):
    t = _open_read(live_server, page, "FITE", "unassisted")
    codes = t["trial"].finding_codes
    page.fill("#findings_text", "Lungs are clear.")
    for code in codes[:-2]:  # the last two findings left unmarked; the second-to-last gets a mark but no confidence
        page.check(f"input[name=present_{code}][value=absent]")
        page.select_option(f"select[name=confidence_{code}]", "4")
    page.check(f"input[name=present_{codes[-2]}][value=present]")
    page.evaluate("document.querySelector('.form-pane').scrollTop = 0")
    page.click("#submit-read")

    message = page.locator("#form-message")
    label = page.inner_text(f"tr[data-code={codes[-2]}] th")
    assert message.inner_text().startswith(f"Mark {label} present or absent, with a confidence.")
    assert "1 more" in message.inner_text()
    assert_in_view(page, "#form-message")
    assert _focused(page)["name"] == f"confidence_{codes[-2]}"  # marked, but no confidence: the select
    assert_in_view(page, f"select[name=confidence_{codes[-2]}]")
    assert page.locator("tr.at-fault").count() == 2
    assert page.get_attribute(f"input[name=present_{codes[-1]}] >> nth=0", "aria-invalid") == "true"
    screenshot(page, "read-error-1280x720")

    # Put the first right: its red mark goes; submit again: focus moves to the next one, the last finding
    page.select_option(f"select[name=confidence_{codes[-2]}]", "3")
    assert page.locator("tr.at-fault").count() == 1
    page.click("#submit-read")
    assert _focused(page) == {"name": f"present_{codes[-1]}", "value": "present"}
    assert_in_view(page, "#form-message")
    assert_in_view(page, f"tr[data-code={codes[-1]}]")

    # All marked, no text: the findings box is at fault
    page.check(f"input[name=present_{codes[-1]}][value=absent]")
    page.select_option(f"select[name=confidence_{codes[-1]}]", "5")
    page.fill("#findings_text", "")
    page.click("#submit-read")
    assert message.inner_text() == "Write the findings or the impression."
    assert _focused(page)["name"] == "findings_text"
    assert_in_view(page, "#form-message")
    page.fill("#findings_text", "Lungs are clear.")
    page.click("#submit-read")
    page.wait_for_function("document.getElementById('form-message').textContent === 'Report submitted.'")
    assert page.locator("tr.at-fault, [aria-invalid]").count() == 0
