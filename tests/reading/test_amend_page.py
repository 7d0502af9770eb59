"""The reader's amendment page (issue 18): reached from the worklist for a submitted read, a form with the latest
version and a required reason, the history below; refusals shown on the page; before lock only; nothing of a draft
on an unassisted reader's page."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from reading import services
from reading.models import ReadAmendment
from tests.factories.reading import reads_of
from trial import services as trial_services

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("AMD-1")]


def form(trial, *, present: bool, impression: str, reason: str = "") -> dict:
    data = {"findings_text": "Clear lungs.", "impression_text": impression, "reason": reason}
    for code in trial.finding_codes:
        data[f"present_{code}"] = "present" if present else "absent"
        data[f"confidence_{code}"] = "4"
    return data


def submitted_read(paired, key="un_reader"):
    m = paired[key]
    read = services.open_read(m.user, reads_of(m).first())
    marks = {c: {"present": False, "confidence": 4} for c in paired["trial"].finding_codes}
    read, _ = services.submit_read(m.user, read, {"findings_text": "Clear lungs.", "impression_text": "Normal chest.",
                                                  "finding_marks": marks})
    return read


def client_of(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_reader_amends_from_the_worklist_with_a_reason_and_sees_the_history(paired):
    trial, user = paired["trial"], paired["un_reader"].user
    read = submitted_read(paired)
    c = client_of(user)
    url = reverse("reading:amend", args=[trial.code, read.public_id])
    worklist = c.get(reverse("reading:worklist", args=[trial.code])).content.decode()
    assert url in worklist
    page = c.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Normal chest." in html and "No amendments yet." in html and "draft" not in html.lower()

    # no reason: refused on the page, nothing stored, the entered values kept
    r = c.post(url, form(trial, present=True, impression="Right basal consolidation."))
    assert r.status_code == 400 and "Give the reason for the amendment." in r.content.decode()
    assert "Right basal consolidation." in r.content.decode()
    assert not ReadAmendment.objects.filter(read=read).exists()

    r = c.post(url, form(trial, present=True, impression="Right basal consolidation.", reason="Missed the opacity"))
    assert r.status_code == 302 and r["Location"] == url
    a = ReadAmendment.objects.get(read=read)
    assert a.number == 1 and a.amended_by == user and a.reason == "Missed the opacity"
    assert a.amended["impression_text"] == "Right basal consolidation."
    read.refresh_from_db()
    assert read.impression_text == "Normal chest."  # the submission is kept
    html = c.get(url).content.decode()
    assert "Amendment 1" in html and "Missed the opacity" in html and "(after amendment 1)" in html
    assert "absent, confidence 4" in html and "present, confidence 4" in html
    assert "draft" not in html.lower()

    # the same version again with another reason: nothing to amend, said on the page
    r = c.post(url, form(trial, present=True, impression="Right basal consolidation.", reason="Again"))
    assert r.status_code == 409 and "nothing to amend" in r.content.decode()


def test_unsubmitted_other_readers_and_locked_trial(paired):
    trial = paired["trial"]
    m = paired["un_reader"]
    unsubmitted = reads_of(m).first()
    c = client_of(m.user)
    assert c.get(reverse("reading:amend", args=[trial.code, unsubmitted.public_id])).status_code == 409
    read = submitted_read(paired)
    url = reverse("reading:amend", args=[trial.code, read.public_id])
    assert client_of(paired["ai_reader"].user).get(url).status_code == 404  # as an unknown id
    assert client_of(paired["ai_reader"].user).post(url, form(trial, present=True, impression="X",
                                                               reason="r")).status_code == 404
    trial_services.lock_trial(paired["coordinator"], trial, reason="end of study")
    page = c.get(url)
    assert page.status_code == 200 and "is locked" in page.content.decode()
    assert url not in c.get(reverse("reading:worklist", args=[trial.code])).content.decode()
    r = c.post(url, form(trial, present=True, impression="Late change.", reason="Too late"))
    assert r.status_code == 409 and "locked" in r.content.decode()
    assert not ReadAmendment.objects.filter(read=read).exists()


def test_a_coordinator_amends_a_read_from_the_case_page(paired):
    """Coordinators amended reads through the API only; the reader's page now serves them too, reached from the
    case page (a link for submitted reads only, none after lock), back to the case, recorded as the coordinator's."""
    trial, coordinator = paired["trial"], paired["coordinator"]
    read = submitted_read(paired, "ai_reader")
    c = client_of(coordinator)
    url = reverse("reading:amend", args=[trial.code, read.public_id])
    case_page = reverse("enrolment:case", args=[trial.code, read.case_id])
    html = c.get(case_page).content.decode()
    assert html.count("data-amend-read") == 1 and url in html
    page = c.get(url)
    assert page.status_code == 200 and case_page in page.content.decode()
    assert "your role (coordinator)" in page.content.decode() and "Normal chest." in page.content.decode()
    r = c.post(url, form(trial, present=True, impression="Right basal consolidation.", reason="Reader asked"))
    assert r.status_code == 302 and r["Location"] == url
    a = ReadAmendment.objects.get(read=read)
    assert a.amended_by == coordinator and a.amended_as == "coordinator"
    other_trial = reverse("reading:amend", args=["NOPE", read.public_id])
    assert c.get(other_trial).status_code == 404
    trial_services.lock_trial(coordinator, trial, reason="end of study")
    assert url not in c.get(case_page).content.decode()
