"""A statistician runs the analysis in the browser, watches it finish and downloads the report."""
from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.figures import FIGURES
from analysis.models import AnalysisRun
from tests.browser import SCREENSHOTS, assert_accessible, login, screenshot
from tests.factories.trial import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_statistician_runs_analysis_and_downloads_report(page, live_server, make_small_trial, tmp_path):
    trial = make_small_trial(code="BRW", lock=True, cases=24, readers=8, experts=3)["trial"]
    login(page, live_server, "brw-stat", PASSWORD)
    page.goto(live_server.url + reverse("analysis:page", args=[trial.code]))
    assert page.locator("text=No analysis has been run").is_visible()

    page.click("#run-analysis")  # Celery runs eagerly in tests: the run finishes inside the request
    page.wait_for_selector("#latest")
    run = AnalysisRun.objects.get(trial=trial)
    assert run.status == "done", run.error
    row = page.locator(f"#run-{run.pk}")
    assert row.locator("[data-role=status]").inner_text() == "Done"
    assert "named" in row.inner_text()
    status_url = live_server.url + reverse("analysis:run_status", args=[trial.code, run.pk])
    status = page.request.get(status_url).json()
    assert status["progress"] == 100
    page.wait_for_load_state("networkidle")
    screenshot(page, "analysis")
    assert_accessible(page, "the analysis page with results")

    with page.expect_download() as dl:
        page.click("#download-report")
    saved = tmp_path / "report.html"
    dl.value.save_as(saved)
    html = saved.read_text()
    assert "Primary results" in html and "ai_assisted" in html and "data:image/png;base64," in html

    page.click("#open-report")
    page.wait_for_load_state("networkidle")
    assert page.locator("table.results.primary").is_visible()
    broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
    assert broken == 0 and page.evaluate("document.images.length") == len(FIGURES)  # 7 with the reliability diagram
    assert_accessible(page, "the report")
    page.set_viewport_size({"width": 1200, "height": 1400})
    screenshot(page, "report")
    assert (SCREENSHOTS / "report.png").is_file() and (SCREENSHOTS / "analysis.png").is_file()
