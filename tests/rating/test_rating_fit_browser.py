"""The rating page on a laptop screen (issue 17): at 1280x720 (and 1440x900) an expert sees the preference, both
quality scores and Submit without scrolling; the reports scroll in their own box."""
from __future__ import annotations

import pytest
from django.urls import reverse

from rating.models import Rating
from tests.browser import LAPTOP, assert_in_view, login, screenshot, url_name
from tests.factories.imaging import add_drawn_image
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.trial import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER_CONTROLS = ["fieldset.preference", "fieldset[data-field=quality_a]", "fieldset[data-field=quality_b]",
                   "input[name=preference][value=none]", "input[name=quality_a][value='5']",
                   "input[name=quality_b][value='5']", "#submit-rating"]


@pytest.mark.parametrize("size", [LAPTOP, {"width": 1440, "height": 900}], ids=["1280x720", "1440x900"])
def test_an_expert_answers_and_submits_without_scrolling(live_server, page, size):
    t = rating_trial(code="FITR", experts=1, panel=1, cases=1, ask_blinding_guess=True)
    case = t["cases"][0]
    add_drawn_image(case)
    complete_case(case, extra_for_ai=True)
    task = tasks_of(t)[0]
    page.set_viewport_size(size)
    login(page, live_server, t["experts"][0].user.username, PASSWORD)
    page.goto(live_server.url + reverse("rating:task", args=[t["trial"].code, task.public_id]))
    page.wait_for_selector("#viewer canvas")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.scrollY") == 0
    for selector in ANSWER_CONTROLS + ["fieldset.blinding-guess", "#report-A h2", "#report-B h2", "#viewer"]:
        assert_in_view(page, selector)
    # the viewer's toolbar takes at most two rows of the narrow viewer pane (it wrapped onto three at 1280x720)
    centres = sorted(page.evaluate("""() => [...document.querySelectorAll('.viewer-toolbar > *')]
        .filter(e => e.offsetParent !== null)
        .map(e => { const r = e.getBoundingClientRect(); return r.top + r.height / 2; })"""))
    # the items of one row share their centre line (align-items: center), whatever their heights
    rows = 1 + sum(1 for a, b in zip(centres, centres[1:], strict=False) if b - a > 8)
    assert rows <= 2, f"the viewer toolbar wraps onto {rows} rows"
    screenshot(page, f"rating-{size['width']}x{size['height']}")

    page.click("#submit-rating")  # nothing chosen: the message is in view too
    assert "Please give a preference" in page.inner_text("#form-error")
    assert_in_view(page, "#form-error")
    for selector in ANSWER_CONTROLS:
        assert_in_view(page, selector)
    page.check("input[name=preference][value=A]")
    page.check("input[name=quality_a][value='4']")
    page.check("input[name=quality_b][value='2']")
    page.check("input[name=blinding_guess] >> nth=0")
    page.click("#submit-rating")
    page.wait_for_url(lambda u: url_name(u) == "rating:worklist")  # the only task: back to the worklist
    task.refresh_from_db()
    assert (task.status, task.preference, task.quality_a, task.quality_b) == (Rating.Status.DONE, "A", 4, 2)
