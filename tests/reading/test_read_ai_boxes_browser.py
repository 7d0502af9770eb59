"""The AI draft's boxes on the read page's viewer (issue 21, item 1): the AI-arm reader turns them on and off with
a toggle button (aria-pressed, or the b key); each outline sits on the box scaled from the draft's input image to
the displayed image, follows zoom, and names its finding on hover or focus. The unassisted reader of the same case
has no toggle, and a withheld draft shows none."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser import LAPTOP, assert_accessible, login, screenshot, url_name
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# In pixels of a 1024 x 1024 input; the displayed image is 512 x 512, so the outline covers (100, 60)-(300, 260).
BOX = {"finding": "pleural_effusion", "x0": 200.0, "y0": 120.0, "x1": 600.0, "y1": 520.0, "score": 0.9,
       "label": "left effusion", "reasoning": "blunted angle"}


def _open(live_server, page, code: str, user) -> None:
    page.context.clear_cookies()
    login(page, live_server, user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:next", args=[code]))
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")


def _expected(page) -> dict:
    """Where the box should be, in page CSS pixels: from the viewer's own transform and the canvas's place."""
    return page.evaluate("""(b) => {
      const v = window.cxrViewer, c = v.canvas, r = c.getBoundingClientRect(), css = r.width / c.width;
      const k = v.width / 1024, s = v.view.scale;
      return {x: r.left + (v.view.tx + b.x0 * k * s) * css, y: r.top + (v.view.ty + b.y0 * k * s) * css,
              width: (b.x1 - b.x0) * k * s * css, height: (b.y1 - b.y0) * k * s * css};
    }""", BOX)


def _assert_placed(page) -> None:
    got = page.locator(".ai-box").bounding_box()
    want = _expected(page)
    assert all(abs(got[k] - want[k]) < 1.0 for k in want), (got, want)


def test_the_ai_reader_toggles_the_drafts_boxes_and_the_unassisted_reader_has_none(live_server, page):
    from inference.models import Draft, OodAction

    t = make_trial(code="BOXA", centers=1)
    cases = add_cases(t, 1)
    with_images_and_drafts(t, cases, size=512)
    image = cases[0].images.first()
    assert (image.display or {}).get("width") == 512
    Draft.objects.filter(case=cases[0]).update(boxes=[{**BOX, "image": image.public_id}],
                                               parameters={"boxes_image_size": [1024, 1024]})
    page.set_viewport_size(LAPTOP)
    _open(live_server, page, "BOXA", reader_in(t, "ai_assisted").user)

    toggle = page.locator("#ai-boxes-toggle")
    assert toggle.inner_text() == "Show AI boxes"
    assert toggle.get_attribute("aria-pressed") == "false"
    assert not page.locator(".ai-box").is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.locator(".ai-box").count() == 1 and page.locator(".ai-box").is_visible()
    assert page.evaluate("window.cxrViewer.width") == 512
    _assert_placed(page)

    # Its label shows on focus (Tab from the toggle reaches it), not before
    label = page.locator(".ai-box .ai-box-label")
    assert not label.is_visible()
    page.locator(".ai-box").focus()
    assert label.is_visible() and label.inner_text() == "Pleural effusion: left effusion"
    assert page.get_attribute(".ai-box", "aria-label") == "AI box: Pleural effusion: left effusion"
    assert_accessible(page, "read page with AI boxes shown")
    screenshot(page, "read-ai-boxes")

    # Zoom and pan: the outline follows the image
    page.locator("#viewer").focus()
    page.keyboard.press("+")
    page.keyboard.press("ArrowLeft")
    _assert_placed(page)

    # Keyboard: Enter on the toggle hides them; b shows them again
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-pressed") == "false" and not page.locator(".ai-box").is_visible()
    page.locator("#viewer").focus()
    page.keyboard.press("b")
    assert toggle.get_attribute("aria-pressed") == "true" and page.locator(".ai-box").is_visible()

    # The unassisted reader of the same case: no draft, no toggle, no boxes
    _open(live_server, page, "BOXA", reader_in(t, "unassisted").user)
    assert page.locator("#ai-boxes-toggle, #viewer-boxes, .ai-box").count() == 0
    assert page.locator("#ai-boxes").count() == 0
    assert_accessible(page, "unassisted read page")

    # A withheld draft: the AI reader sees no toggle and no boxes
    Draft.objects.filter(case=cases[0]).update(ood_action=OodAction.WITHHELD, ood_reasons=["noise"])
    _open(live_server, page, "BOXA", reader_in(t, "ai_assisted").user)
    assert page.locator(".ood-warning").is_visible()
    assert page.locator("#ai-boxes, #ai-boxes-toggle, #viewer-boxes, .ai-box").count() == 0
    screenshot(page, "read-ood-withheld")  # issue 21 item 4: the reader is told why no draft is shown
