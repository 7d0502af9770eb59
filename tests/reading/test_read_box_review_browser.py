"""The AI-arm reader accepts or rejects each AI box from a list beside the viewer (issue 21 item 1): toggle buttons
(aria-pressed) reached with the keyboard; focusing a row shows the boxes and highlights its box; the decision
colours the outline and is autosaved with the report; after a reload the decisions are back. The unassisted
reader's page has no list and never loads the module."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser import LAPTOP, assert_accessible, login, screenshot, url_name
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = "window.CXR_READ_OPTIONS = {beatMs: 1000, autosaveMs: 300};"
BOXES = [
    {"finding": "pleural_effusion", "x0": 200.0, "y0": 520.0, "x1": 420.0, "y1": 800.0, "label": "left effusion"},
    {"finding": "cardiomegaly", "x0": 380.0, "y0": 380.0, "x1": 760.0, "y1": 720.0, "label": "enlarged heart"},
]


def _open(live_server, page, code: str, user) -> None:
    page.context.clear_cookies()
    login(page, live_server, user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:next", args=[code]))
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")


def test_the_ai_reader_accepts_and_rejects_each_box_with_the_keyboard_and_it_is_autosaved(live_server, page):
    from reading.models import Read

    t = make_trial(code="BOXR", centers=1)
    cases = add_cases(t, 1)
    with_images_and_drafts(t, cases, size=512)
    from inference.models import Draft

    image = cases[0].images.first()
    Draft.objects.filter(case=cases[0]).update(boxes=[{**b, "image": image.public_id} for b in BOXES],
                                               parameters={"boxes_image_size": [1024, 1024]})
    page.add_init_script(FAST)
    page.set_viewport_size(LAPTOP)
    ai = reader_in(t, "ai_assisted")
    _open(live_server, page, "BOXR", ai.user)

    rows = page.locator(".box-review-item")
    assert rows.count() == 2
    assert rows.nth(0).locator(".box-review-name").inner_text() == "1. Pleural effusion: left effusion"
    accept1 = page.get_by_role("button", name="Accept box 1, Pleural effusion: left effusion")
    reject2 = page.get_by_role("button", name="Reject box 2, Cardiomegaly: enlarged heart")
    assert accept1.get_attribute("aria-pressed") == "false"
    assert not page.locator(".ai-box").first.is_visible()

    # Focus (keyboard) on a row's button shows the boxes and highlights that box
    accept1.focus()
    assert page.locator("#ai-boxes-toggle").get_attribute("aria-pressed") == "true"
    highlighted = page.locator(".ai-box.ai-box-highlight")
    assert highlighted.count() == 1 and highlighted.get_attribute("data-box-id") == "b0"
    page.keyboard.press("Enter")
    assert accept1.get_attribute("aria-pressed") == "true"
    assert page.locator('.ai-box[data-box-id="b0"]').evaluate("e => e.classList.contains('ai-box-accepted')")
    # Tab moves to Reject of box 1, then Accept and Reject of box 2
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == \
        "Reject box 2, Cardiomegaly: enlarged heart"
    assert page.locator(".ai-box.ai-box-highlight").get_attribute("data-box-id") == "b1"
    page.keyboard.press("Space")
    assert reject2.get_attribute("aria-pressed") == "true"
    assert page.locator('.ai-box[data-box-id="b1"]').evaluate("e => e.classList.contains('ai-box-rejected')")
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Saved')")
    read = Read.objects.get(reader=ai, case=cases[0])
    assert read.box_reviews == {"b0": "accepted", "b1": "rejected"}
    assert_accessible(page, "read page with the AI box review")
    screenshot(page, "read-box-review")

    # Pressing the pressed button again clears the decision
    reject2.click()
    assert reject2.get_attribute("aria-pressed") == "false"
    page.wait_for_function("document.getElementById('save-status').textContent.startsWith('Saved')")
    page.wait_for_timeout(400)
    read.refresh_from_db()
    assert read.box_reviews == {"b0": "accepted"}

    # A click on an outline moves focus to its row's Accept button
    page.locator('.ai-box[data-box-id="b1"]').click()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == \
        "Accept box 2, Cardiomegaly: enlarged heart"

    # A reload shows the saved decisions
    page.reload()
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")
    assert page.get_by_role("button", name="Accept box 1, Pleural effusion: left effusion") \
        .get_attribute("aria-pressed") == "true"

    # The unassisted reader: no list, and the module is not even loaded
    scripts = []
    page.on("request", lambda r: scripts.append(r.url))
    _open(live_server, page, "BOXR", reader_in(t, "unassisted").user)
    assert page.locator("#box-review, .box-review-item").count() == 0
    assert not any("box_review" in u or "aids.css" in u for u in scripts)
