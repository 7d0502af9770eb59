"""Amendments of a submitted read (issue 18 item 2): the author, or a coordinator, with a reason, before lock; the
read keeps its first submission; each amendment is stored, audited with old and new values, and exported after
lock as its own table."""
from __future__ import annotations

import pytest
from django.http import Http404
from django.urls import reverse
from rest_framework.test import APIClient

from analysis.export import build_export
from core.errors import Conflict, InvalidInput, TrialLocked
from reading import services
from reading.models import ReadAmendment
from tests.factories.reading import reads_of
from trial import services as trial_services
from trial.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("AMD-1")]


def report(trial, present=False, impression="Normal chest.") -> dict:
    return {"findings_text": "Clear lungs.", "impression_text": impression,
            "finding_marks": {c: {"present": present, "confidence": 4} for c in trial.finding_codes}}


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def amend_url(read) -> str:
    return reverse("reading-api:amend", args=[read.public_id])


@pytest.fixture
def submitted(paired):
    m = paired["un_reader"]
    read = services.open_read(m.user, reads_of(m).first())
    read, _ = services.submit_read(m.user, read, report(paired["trial"]))
    paired["read"] = read
    return paired


def test_author_amends_with_reason_the_original_stays_and_the_amendment_is_stored_and_audited(submitted):
    trial, read, user = submitted["trial"], submitted["read"], submitted["un_reader"].user
    before = {k: getattr(read, k) for k in ("findings_text", "impression_text", "finding_marks", "submitted_at")}
    body = {**report(trial, present=True, impression="Right basal consolidation."), "reason": "Missed the opacity"}
    r = client_for(user).post(amend_url(read), body, format="json")
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["number"] == 1 and out["amended_as"] == "reader" and out["already_amended"] is False
    assert out["previous"]["impression_text"] == "Normal chest."
    assert out["amended"]["impression_text"] == "Right basal consolidation."
    assert "arm" not in out
    read.refresh_from_db()
    assert {k: getattr(read, k) for k in before} == before  # the first submission is unchanged
    a = ReadAmendment.objects.get(read=read)
    assert a.amended_by == user and a.reason == "Missed the opacity"
    assert a.previous["finding_marks"] == before["finding_marks"]
    assert all(m["present"] is True for m in a.amended["finding_marks"].values())
    entry = AuditEntry.objects.get(action="read:amend", object_id=str(read.pk))
    assert entry.reason == "Missed the opacity"
    assert entry.before["impression_text"] == "Normal chest."
    assert entry.after["impression_text"] == "Right basal consolidation." and entry.after["amendment"] == 1
    # A second amendment starts from the first one's version.
    second, created = services.amend_read(actor=user, read=read, report=report(trial, impression="Consolidation."),
                                          reason="Shorter impression")
    assert created and second.number == 2 and second.previous["impression_text"] == "Right basal consolidation."


def test_another_reader_is_refused(submitted):
    trial, read, other = submitted["trial"], submitted["read"], submitted["ai_reader"].user
    body = {**report(trial, impression="Changed."), "reason": "why not"}
    with pytest.raises(Http404):
        services.amend_read(actor=other, read=read, report=body, reason="why not")
    # Anyone but its reader or a coordinator: the 404 of an unknown id (tests/security/test_probe_parity.py).
    assert client_for(other).post(amend_url(read), body, format="json").status_code == 404
    assert client_for(submitted["experts"][0].user).post(amend_url(read), body, format="json").status_code == 404
    assert client_for(submitted["statistician"].user).post(amend_url(read), body, format="json").status_code == 404
    assert client_for(other).post(reverse("reading-api:amend", args=["no-such-read"]), body,
                                  format="json").status_code == 404
    assert not ReadAmendment.objects.exists()


def test_the_reason_is_required_and_a_coordinator_amends_with_one(submitted):
    trial, read, coord = submitted["trial"], submitted["read"], submitted["coordinator"]
    c = client_for(coord)
    for reason in (None, "", "   "):
        body = {**report(trial, impression="Changed."), **({} if reason is None else {"reason": reason})}
        r = c.post(amend_url(read), body, format="json")
        assert r.status_code == 400 and "reason" in r.json()["detail"].lower(), r.content
    with pytest.raises(InvalidInput):
        services.amend_read(actor=coord, read=read, report=report(trial, impression="Changed."), reason=" ")
    assert not ReadAmendment.objects.exists()
    r = c.post(amend_url(read), {**report(trial, impression="Changed."), "reason": "Transcription error"},
               format="json")
    assert r.status_code == 200 and r.json()["amended_as"] == "coordinator"
    a = ReadAmendment.objects.get(read=read)
    assert a.amended_by == coord and a.reason == "Transcription error"


def test_an_incomplete_report_or_an_unsubmitted_read_is_refused(submitted):
    trial, m = submitted["trial"], submitted["un_reader"]
    c = client_for(m.user)
    r = c.post(amend_url(submitted["read"]), {"impression_text": "x", "reason": "r"}, format="json")
    assert r.status_code == 400
    unsubmitted = reads_of(m).filter(submitted_at__isnull=True).first()
    with pytest.raises(Conflict):
        services.amend_read(actor=m.user, read=unsubmitted, report=report(trial), reason="r")
    r = c.post(amend_url(unsubmitted), {**report(trial), "reason": "r"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "not_submitted"
    assert not ReadAmendment.objects.exists()


def test_a_locked_trial_refuses_amendments(submitted):
    trial, read, user = submitted["trial"], submitted["read"], submitted["un_reader"].user
    trial_services.lock_trial(submitted["coordinator"], trial, reason="end of study")
    with pytest.raises(TrialLocked):
        services.amend_read(actor=user, read=read, report=report(trial, impression="Changed."), reason="late")
    r = client_for(user).post(amend_url(read), {**report(trial, impression="Changed."), "reason": "late"},
                              format="json")
    assert r.status_code == 409 and r.json()["code"] == "trial_locked"
    assert not ReadAmendment.objects.exists()


def test_a_repeated_amendment_is_idempotent_and_no_change_is_refused(submitted):
    trial, read, user = submitted["trial"], submitted["read"], submitted["un_reader"].user
    c = client_for(user)
    body = {**report(trial, impression="Changed."), "reason": "Typo"}
    first, second = (c.post(amend_url(read), body, format="json") for _ in range(2))
    assert first.status_code == second.status_code == 200
    assert first.json()["already_amended"] is False and second.json()["already_amended"] is True
    assert second.json()["number"] == first.json()["number"] == 1
    assert ReadAmendment.objects.filter(read=read).count() == 1
    assert AuditEntry.objects.filter(action="read:amend").count() == 1
    # The same report with another reason, or the original report unchanged: nothing to amend.
    r = c.post(amend_url(read), {**body, "reason": "Another reason"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "no_change"
    with pytest.raises(Conflict):
        services.amend_read(actor=submitted["coordinator"], read=read, report=report(trial, impression="Changed."),
                            reason="Typo")
    assert ReadAmendment.objects.count() == 1


@pytest.mark.requirement("AMD-3")
def test_the_export_carries_amendments_after_lock_only(submitted):
    trial, read, user = submitted["trial"], submitted["read"], submitted["un_reader"].user
    services.amend_read(actor=user, read=read, report=report(trial, present=True, impression="Changed."),
                        reason="Missed findings")
    before = build_export(trial)
    assert "amendments" not in before.tables
    assert before.manifest["tables_withheld_until_lock"] == ["amendments", "rating_amendments", "box_reviews", "arena",
                                                             "arena_amendments"]
    assert not any(d["table"] == "amendments" for d in before.dictionary)
    trial_services.lock_trial(submitted["coordinator"], trial, reason="end of study")
    trial.refresh_from_db()
    export = build_export(trial)
    assert export.manifest["tables_withheld_until_lock"] == []
    rows = export.tables["amendments"]
    assert len(rows) == 1
    row = rows[0]
    assert row["read_id"] == read.public_id and row["amendment"] == 1 and row["amended_as"] == "reader"
    assert row["reason"] == "Missed findings" and "arm" not in row
    assert all(row[f"finding_{c}"] == 1 and row[f"confidence_{c}"] == 4 for c in trial.finding_codes)
    # The reads table keeps the first submission (all absent), which the analysis counts.
    first = next(r for r in export.tables["reads"] if r["read_id"] == read.public_id)
    assert all(first[f"finding_{c}"] == 0 for c in trial.finding_codes)
    assert "amendments" in export.manifest["tables"]
    assert any(d["table"] == "amendments" and d["column"] == "reason" for d in export.dictionary)
    assert "amended_as" in export.csv_text("amendments").splitlines()[0]
