"""Similar cases beside the AI-arm viewer (issue 21 item 2): the trial's reference-library cases most like this
one, each with its images, similarity and report, in a disclosure the keyboard opens; the unassisted reader's page
has none and cannot load the library's images."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser import LAPTOP, assert_accessible, login, screenshot, url_name
from tests.factories.trial import PASSWORD
from tests.inference.test_similar_cases import REPORTS, _library_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open(live_server, page, code: str, user) -> None:
    page.context.clear_cookies()
    login(page, live_server, user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:next", args=[code]))
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")


def test_the_ai_reader_sees_the_most_similar_library_cases_with_their_reports(live_server, page):
    from reading.models import Read

    t = _library_trial("SIMB", k=3)
    case = t["cases"][0]
    ai = Read.objects.select_related("reader__user").get(case=case, arm__is_ai=True).reader
    un = Read.objects.select_related("reader__user").get(case=case, arm__is_ai=False).reader
    page.set_viewport_size(LAPTOP)
    _open(live_server, page, "SIMB", ai.user)

    box = page.locator("#similar-cases")
    summary = box.locator("summary")
    assert summary.inner_text() == "Similar cases from the reference library (3)"
    assert not box.locator(".similar-case").first.is_visible()
    summary.focus()
    page.keyboard.press("Enter")  # a native disclosure: the keyboard opens it
    items = box.locator(".similar-case")
    assert items.count() == 3 and items.first.is_visible()
    assert items.first.locator(".similar-report").inner_text().startswith("Findings: Clear lungs")
    assert REPORTS["LIB-A"].split("\n")[0] in items.nth(1).inner_text()
    scores = [float(s.split("similarity ")[1]) for s in items.locator(".similar-score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.9
    # The thumbnails load (the AI-arm reader may see the library's images)
    page.wait_for_function("Array.from(document.querySelectorAll('.similar-images img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert_accessible(page, "read page with similar cases")
    screenshot(page, "read-similar-cases")
    image_url = items.first.locator("img").get_attribute("src")

    _open(live_server, page, "SIMB", un.user)
    assert page.locator("#similar-cases, .similar-case").count() == 0
    assert page.request.get(live_server.url + image_url).status in (403, 404)
