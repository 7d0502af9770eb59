"""The Content-Security-Policy in a real browser (issue 8): the pages' scripts run under the app's strict policy
(scripts from 'self' only) with no violation reported. The shared `page` fixture bypasses the CSP (Playwright's
wait_for_function needs eval), so this test makes its own, CSP-enforcing, browser context."""
from __future__ import annotations

import time

import pytest
from django.urls import reverse

from tests.browser import login
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI));"""


def _until(pg, expression: str, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pg.evaluate(expression)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never true: {expression}")


def test_app_pages_run_under_the_csp(live_server, browser, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    from analysis.models import AnalysisRun
    from rating.models import Rating
    from tests.factories.rating import complete_case
    from tests.factories.reading import reader_in, with_images_and_drafts

    t = make_trial(code="CSP", centers=1, experts=1, expert_panel_size=1, preference_majority=1)
    cases = add_cases(t, 3)
    with_images_and_drafts(t, cases)
    complete_case(cases[0])
    rating = Rating.objects.get()
    AnalysisRun.objects.create(trial=t["trial"], requested_by=t["coordinator"], status=AnalysisRun.Status.RUNNING,
                               progress=10, message="Running")
    ai_reader = reader_in(t, "ai_assisted")
    base = live_server.url
    problems: list[str] = []

    def session(username: str):
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})  # CSP enforced
        pg = ctx.new_page()
        pg.set_default_timeout(15000)
        pg.add_init_script(REPORT_VIOLATIONS)
        pg.on("console", lambda m: problems.append(f"{pg.url}: {m.text}")
              if "Content Security Policy" in m.text or "CSP violation" in m.text else None)
        pg.on("pageerror", lambda e: problems.append(f"{pg.url}: {e}"))
        login(pg, live_server, username, PASSWORD)
        return ctx, pg

    # Reader: worklist, read page (viewer.js and read.js draw the image and fill the form from the draft)
    ctx, pg = session(ai_reader.user.username)
    pg.goto(base + reverse("reading:worklist", args=["CSP"]))
    pg.goto(base + reverse("reading:next", args=["CSP"]))
    _until(pg, "() => !!(window.cxrViewer && window.cxrViewer.source)")
    ctx.close()

    # Expert: the rating page (rate.js builds the viewer)
    ctx, pg = session(rating.expert.user.username)
    pg.goto(base + reverse("rating:task", args=["CSP", rating.public_id]))
    _until(pg, "() => window.ratingViewer !== undefined")
    ctx.close()

    # Coordinator: trial page, drafts page (autosubmit.js), analysis page (analysis.js polls the run's status)
    ctx, pg = session(t["coordinator"].username)
    response = pg.goto(base + reverse("trial:detail", args=["CSP"]))
    assert "script-src 'self'" in response.headers["content-security-policy"]
    pg.goto(base + reverse("inference:drafts", args=["CSP"]))
    with pg.expect_navigation():
        pg.select_option("select[name=status]", "ready")
    assert "status=ready" in pg.url
    with pg.expect_request(lambda r: "status.json" in r.url, timeout=10000):
        pg.goto(base + reverse("analysis:page", args=["CSP"]))
    ctx.close()

    assert not problems, "\n".join(problems)
