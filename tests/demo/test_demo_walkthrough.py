"""The demo as a newcomer meets it: seed it, then log in as every role in headless Chromium and do one step each.
The statistician's report numbers must move with what the others did."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from analysis.models import AnalysisRun
from demo.seed import DEMO_CODE, DEMO_PASSWORD, seed_demo
from tests.browser import login, screenshot, url_name
from trial.models import Case

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def run_analysis(page, live_server) -> dict:
    page.goto(live_server.url + reverse("analysis:page", args=[DEMO_CODE]))
    page.click("#run-analysis")
    page.wait_for_selector("#latest")
    run = AnalysisRun.objects.filter(trial__code=DEMO_CODE).latest("pk")
    assert run.status == "done", run.error
    results = reverse("analysis:file", args=[DEMO_CODE, run.pk, "report/results.json"])
    resp = page.request.get(live_server.url + results)
    assert resp.ok
    return json.loads(resp.body())


def logout(page, live_server):
    page.context.clear_cookies()


def test_demo_walkthrough_every_role(page, live_server):
    result = seed_demo(n_cases=9, leave_open_cases=1)
    logins = result.logins
    assert set(logins) >= {"coordinator", "reader (AI arm)", "reader (unassisted)", "expert", "statistician"}

    # Statistician: a first report from the pre-filled data.
    login(page, live_server, logins["statistician"], DEMO_PASSWORD)
    assert "Open the analysis" in page.content()
    screenshot(page, "demo-home-statistician")
    before = run_analysis(page, live_server)
    assert before["flow"]["ratings"] > 0 and before["flow"]["by_arm"]
    logout(page, live_server)

    # Coordinator: enrol the case left open.
    login(page, live_server, logins["coordinator"], DEMO_PASSWORD)
    page.goto(live_server.url + reverse("trial:detail", args=[DEMO_CODE]))
    screenshot(page, "demo-coordinator")
    open_case = Case.objects.get(trial__code=DEMO_CODE, enrolled_at__isnull=True)
    page.click(f"button[data-enrol='{open_case.code}']")
    page.wait_for_load_state("networkidle")
    assert f"Case {open_case.code} enrolled" in page.content()
    open_case.refresh_from_db()
    assert open_case.enrolled_at is not None and open_case.reads.count() == 2
    logout(page, live_server)

    # Reader (AI arm): open the next read (one keypress), keep the draft, mark the findings, submit.
    login(page, live_server, logins["reader (AI arm)"], DEMO_PASSWORD)
    page.goto(live_server.url + reverse("reading:worklist", args=[DEMO_CODE]))
    screenshot(page, "demo-worklist")
    page.keyboard.press("n")
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")
    assert "retrieval baseline" in page.content()
    for radio in page.locator("input[type=radio][value=absent]").all():
        radio.check()
    for select in page.locator("select[name^=confidence_]").all():
        select.select_option("4")
    screenshot(page, "demo-read-ai")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.getElementById('form-message').textContent === 'Report submitted.'")
    logout(page, live_server)

    # Expert: rate the next pair, blind.
    login(page, live_server, logins["expert"], DEMO_PASSWORD)
    page.goto(live_server.url + reverse("rating:worklist", args=[DEMO_CODE]))
    page.click("#next-task")
    page.wait_for_selector("#viewer canvas")
    page.check("input[name=preference][value=A]")
    page.check("input[name=quality_a][value='5']")
    page.check("input[name=quality_b][value='4']")
    page.check("input[name=blinding_guess][value=dont_know]")  # the demo measures blinding
    screenshot(page, "demo-rating")
    page.click("#submit-rating")
    page.wait_for_load_state("networkidle")
    logout(page, live_server)

    # Statistician again: the report reflects the new read and rating; download it.
    login(page, live_server, logins["statistician"], DEMO_PASSWORD)
    after = run_analysis(page, live_server)
    assert after["flow"]["ratings"] == before["flow"]["ratings"] + 1
    reads_before = sum(a["reads"] for a in before["flow"]["by_arm"].values())
    reads_after = sum(a["reads"] for a in after["flow"]["by_arm"].values())
    assert reads_after == reads_before + 1
    assert after["flow"]["cases_enrolled"] == before["flow"]["cases_enrolled"] + 1
    with page.expect_download() as dl:
        page.click("#download-report")
    assert dl.value.suggested_filename.endswith(".html")
    screenshot(page, "demo-analysis")
