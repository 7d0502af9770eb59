"""The expert sees each report's finding marks as a small table beside its text (issue 17): present/absent and the
reader's confidence, in the trial's order, and nothing that belongs to one arm (what a draft pre-filled, flipped
findings) on the page or in the API."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from rating import selectors
from reading.models import Read
from tests.browser import LAPTOP, assert_accessible, assert_in_view, login, screenshot
from tests.factories.imaging import add_drawn_image
from tests.factories.rating import rating_trial, submit_read, tasks_of
from tests.factories.trial import PASSWORD

ROW_KEYS = {"code", "label", "present", "confidence"}


def _marks(codes, present: set[str], reverse_order=False):
    items = [(c, {"present": c in present, "confidence": 2 if c in present else 5}) for c in codes]
    return dict(reversed(items) if reverse_order else items)


def _rated_case(code: str):
    t = rating_trial(code=code, experts=1, panel=1, cases=1)
    case = t["cases"][0]
    codes = t["trial"].finding_codes
    for read in Read.objects.filter(case=case).select_related("arm").order_by("pk"):
        ai = read.arm.code == "ai_assisted"
        # The AI read's dict is written in another key order and carries what a draft pre-filled and flipped:
        # none of it may reach the expert.
        if ai:
            Read.objects.filter(pk=read.pk).update(prefilled_marks={c: True for c in codes},
                                                   flipped_findings=[codes[0]])
        submit_read(read, marks=_marks(codes, {codes[0]} if ai else {codes[1]}, reverse_order=ai))
    return t, case, tasks_of(t)[0]


@pytest.mark.django_db
def test_each_report_carries_its_marks_in_the_trial_order_and_nothing_else():
    t, case, task = _rated_case("MARKS")
    codes = t["trial"].finding_codes
    labels = [f["label"] for f in t["trial"].findings]
    payload = selectors.task_payload(selectors.rating_for_expert(t["experts"][0].user, t["trial"], task.public_id))
    assert [r["label"] for r in payload["reports"]] == ["A", "B"]
    for report in payload["reports"]:
        assert set(report) == {"label", "findings", "impression", "marks"}
        assert [m["code"] for m in report["marks"]] == codes  # trial order, whatever order the read stored
        assert [m["label"] for m in report["marks"]] == labels
        for row in report["marks"]:
            assert set(row) == ROW_KEYS
            assert row["confidence"] == (2 if row["present"] else 5)
    presents = sorted(tuple(m["code"] for m in r["marks"] if m["present"]) for r in payload["reports"])
    assert presents == sorted([(codes[0],), (codes[1],)])
    # The read whose report is A is the one whose marks are A's.
    read_a = Read.objects.get(pk=task.read_a_id)
    assert {m["code"]: m["present"] for m in payload["reports"][0]["marks"]} == {
        c: v["present"] for c, v in read_a.finding_marks.items()}


@pytest.mark.django_db
def test_unmarked_or_malformed_marks_show_as_not_marked():
    t, case, task = _rated_case("MARKS2")
    codes = t["trial"].finding_codes
    read = Read.objects.get(pk=task.read_a_id)
    read.finding_marks = {codes[0]: {"present": "yes", "confidence": 9}}
    rows = selectors.blinded_marks(read, t["trial"].findings)
    assert rows[0] == {"code": codes[0], "label": t["trial"].findings[0]["label"], "present": None, "confidence": None}
    assert all(r["present"] is None and r["confidence"] is None for r in rows[1:])


@pytest.mark.django_db
def test_page_and_api_show_the_table_and_no_arm_detail(client):
    t, case, task = _rated_case("MARKS3")
    expert = t["experts"][0].user
    assert client.login(username=expert.username, password=PASSWORD)
    html = client.get(reverse("rating:task", args=[t["trial"].code, task.public_id])).content.decode()
    assert html.count('class="marks-table"') == 2
    assert "of report A</span></caption>" in html and "of report B</span></caption>" in html
    api = APIClient()
    api.force_authenticate(expert)
    body = api.get(reverse("rating-task", args=[t["trial"].code, task.public_id])).json()
    assert [len(r["marks"]) for r in body["reports"]] == [len(t["trial"].findings)] * 2
    for text in (html, json.dumps(body)):
        for word in ("prefill", "pre-fill", "flipped", "ai_assisted", "unassisted", "draft"):
            assert word not in text.lower(), word


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [LAPTOP, {"width": 1440, "height": 900}], ids=["1280x720", "1440x900"])
def test_marks_table_sits_beside_the_text_and_the_answer_stays_in_view(live_server, page, size):
    t, case, task = _rated_case(f"MARKSB{size['width']}")
    add_drawn_image(case)
    page.set_viewport_size(size)
    login(page, live_server, t["experts"][0].user.username, PASSWORD)
    page.goto(live_server.url + reverse("rating:task", args=[t["trial"].code, task.public_id]))
    page.wait_for_selector("#viewer canvas")
    page.wait_for_load_state("networkidle")
    for label in ("A", "B"):
        table = page.locator(f"#marks-{label}")
        assert table.locator("tbody tr").count() == len(t["trial"].findings)
        text_box = page.locator(f"#report-{label} .report-text").bounding_box()
        table_box = table.bounding_box()
        if size["width"] >= 1440:  # wide enough: beside the text, top-aligned
            assert table_box["x"] >= text_box["x"] + text_box["width"] - 1
            assert abs(table_box["y"] - text_box["y"]) < 40
        else:  # otherwise it wraps below the text, still inside its report
            assert table_box["y"] >= text_box["y"]
    page.locator("#marks-A").scroll_into_view_if_needed()
    for selector in ("#submit-rating", "input[name=quality_b][value='5']", "#marks-A"):
        assert_in_view(page, selector)
    assert_accessible(page, "rating page with marks")
    screenshot(page, f"rating-marks-{size['width']}x{size['height']}")
