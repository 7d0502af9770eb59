"""Analysis runs never hold the page (issue 17): without a broker (the demo) the run goes to a thread of its own,
the page answers at once with the run queued or running and polls its progress until it is done."""
from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Error as PlaywrightError

from analysis.models import AnalysisRun
from tests.browser import assert_accessible, login, screenshot
from tests.factories.trial import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_page_answers_at_once_and_polls_the_run_to_done(page, live_server, make_small_trial, settings):
    settings.ANALYSIS_EAGER_IN_THREAD = True
    trial = make_small_trial(code="PROG", lock=True, cases=24, readers=8, experts=3)["trial"]
    page.set_viewport_size({"width": 1280, "height": 720})
    login(page, live_server, "prog-stat", PASSWORD)
    page.goto(live_server.url + reverse("analysis:page", args=[trial.code]))
    page.click("#run-analysis")
    page.wait_for_load_state("domcontentloaded")
    run = AnalysisRun.objects.get(trial=trial)
    row = page.locator(f"#run-{run.pk}")
    # The page came back before the run finished: it shows the run in progress, with a bar it updates.
    assert row.locator("[data-role=bar]").count() == 1
    assert row.locator("[data-role=status]").inner_text().lower() in ("queued", "running")
    assert page.locator("#run-analysis").is_disabled()  # one run at a time
    assert_accessible(page, "analysis page with a run in progress")
    screenshot(page, "analysis-progress-1280x720")
    seen = set()
    for _ in range(600):  # the page polls status.json every second and reloads when the run ends
        try:
            seen.add(page.evaluate("() => (document.querySelector('[data-role=pct]') || {}).textContent || ''"))
        except PlaywrightError as exc:  # the page reloads itself when the run ends: read again after the reload
            if "context was destroyed" not in str(exc):
                raise
            page.wait_for_load_state("domcontentloaded")
        if page.locator("#latest").count():
            break
        page.wait_for_timeout(300)
    page.wait_for_selector("#latest", timeout=120000)
    run.refresh_from_db()
    assert run.status == AnalysisRun.Status.DONE and run.progress == 100, run.error
    assert row.locator("[data-role=status]").inner_text() == "Done"
    assert seen - {""}, "no progress was shown while the run was going"
