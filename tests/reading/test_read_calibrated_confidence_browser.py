"""Calibrated confidence on the read page (issue 21 item 3): the AI-arm reader sees the AI's per-finding
percentages after the expert model's calibration, labelled with the number of reference cases it was fitted on
(a finding without a fit shows its raw value, starred); an uncalibrated draft's percentages are labelled
uncalibrated; a withheld draft and the unassisted arm show no percentages and no calibration line."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser import LAPTOP, assert_accessible, login, screenshot
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RAW = {"pleural_effusion": 0.8731, "pneumothorax": 0.0417, "atelectasis": 0.6123,  # the factory's draft
       "consolidation": 0.2291, "cardiomegaly": 0.1379, "lung_opacity": 0.9113}
CALIBRATED = {"pleural_effusion": 0.6204, "pneumothorax": 0.0893, "atelectasis": 0.4471,
              "consolidation": 0.1802, "lung_opacity": 0.7355}  # no fit for cardiomegaly


def _open(live_server, page, t, arm: str, case) -> None:
    page.context.clear_cookies()
    m = reader_in(t, arm)
    login(page, live_server, m.user.username, PASSWORD)
    read = reads_of(m).get(case=case)
    page.goto(live_server.url + reverse("reading:read", args=[t["trial"].code, read.public_id]))
    page.wait_for_function("window.cxrViewer && window.cxrViewer.source !== null")


def _hints(page) -> dict:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('tr[data-code]')].map(
        (tr) => [tr.dataset.code, [tr.querySelector('td.hint')?.innerText.trim() ?? null,
                                   tr.querySelector('td.hint')?.dataset.calibrated ?? null]]))""")


def test_the_ai_reader_sees_calibrated_percentages_labelled_and_the_unassisted_reader_none(live_server, page):
    from inference.models import Draft, OodAction

    t = make_trial(code="CALQ", centers=1)
    calibrated_case, raw_case = add_cases(t, 2)
    with_images_and_drafts(t, [calibrated_case, raw_case], size=512)
    Draft.objects.filter(case=calibrated_case).update(
        calibrated_probabilities=CALIBRATED,
        parameters={"calibration": {"id": 7, "sha256": "0" * 64, "method": "platt", "trial": "CALQ", "n_cases": 40,
                                    "findings": sorted(CALIBRATED)}})
    page.set_viewport_size(LAPTOP)

    _open(live_server, page, t, "ai_assisted", calibrated_case)
    note = page.locator("#ai-calibration")
    assert note.is_visible() and note.get_attribute("data-calibrated") == "yes"
    assert note.inner_text() == (", calibrated on 40 trial cases (Platt scaling) "
                                 "(* uncalibrated: no fit for that finding)")
    hints = _hints(page)
    for code, p in CALIBRATED.items():
        assert hints[code] == [f"{round(p * 100)}%", "yes"], code
    assert hints["cardiomegaly"] == [f"{round(RAW['cardiomegaly'] * 100)}%*", "no"]
    assert_accessible(page, "read page with calibrated AI percentages")
    screenshot(page, "read-calibrated-confidence")

    # a draft made before any calibration: raw percentages, labelled uncalibrated
    _open(live_server, page, t, "ai_assisted", raw_case)
    assert page.locator("#ai-calibration").is_visible()
    assert page.locator("#ai-calibration").inner_text() == ", as the model's uncalibrated output"
    assert page.locator("#ai-calibration").get_attribute("data-calibrated") == "no"
    assert _hints(page) == {c: [f"{round(p * 100)}%", "no"] for c, p in RAW.items()}

    # the unassisted reader of the same case: no AI column, no calibration line, no word of it on the page
    _open(live_server, page, t, "unassisted", calibrated_case)
    assert page.locator("#ai-calibration, td.hint, th.hint-col").count() == 0
    assert "calibrat" not in page.content().lower()

    # a withheld draft: no percentages, no calibration line
    Draft.objects.filter(case=calibrated_case).update(ood_action=OodAction.WITHHELD, ood_reasons=["noise"])
    _open(live_server, page, t, "ai_assisted", calibrated_case)
    assert page.locator(".ood-warning").is_visible()
    assert page.locator("#ai-calibration").count() == 0
    assert all(text == "" for text, _ in _hints(page).values())
