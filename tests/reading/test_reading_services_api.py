"""Open, heartbeat, autosave and submit through the services and the REST API: timing, draft changes, blinding
of the unassisted arm, idempotent submit, lock, other readers' reads and malformed payloads."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import InvalidInput, TrialLocked
from reading import services
from reading.models import Read
from tests.factories.reading import DRAFT_FINDINGS, reads_of
from trial import services as trial_services
from trial.models import AuditEntry

pytestmark = pytest.mark.django_db


def complete(trial, present=False, **extra) -> dict:
    return {"findings_text": "Clear lungs.", "impression_text": "Normal chest.",
            "finding_marks": {c: {"present": present, "confidence": 4} for c in trial.finding_codes}, **extra}


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def api(read, action="") -> str:
    return reverse(f"reading-api:{action or 'detail'}", args=[read.public_id])


def test_open_stamps_once_stores_draft_and_prefills(paired):
    m = paired["ai_reader"]
    read = reads_of(m).first()
    opened = services.open_read(m.user, read)
    assert opened.opened_at is not None and opened.opened_at.tzinfo is not None
    assert opened.status == Read.Status.IN_PROGRESS
    assert opened.draft is not None and opened.draft.case_id == read.case_id
    assert opened.findings_text == DRAFT_FINDINGS
    again = services.open_read(m.user, read)
    assert again.opened_at == opened.opened_at
    assert AuditEntry.objects.filter(action="read:open", object_id=str(read.pk)).count() == 1


EXPECTED_PREFILL = {"pleural_effusion": True, "pneumothorax": False, "atelectasis": True,  # the factory's draft
                    "consolidation": False, "cardiomegaly": False, "lung_opacity": True}


def test_the_ai_draft_prefills_the_finding_choices_and_the_read_records_them(paired):
    m = paired["ai_reader"]
    opened = services.open_read(m.user, reads_of(m).first())
    assert opened.prefilled_marks == EXPECTED_PREFILL
    assert opened.finding_marks == {c: {"present": p, "confidence": None} for c, p in EXPECTED_PREFILL.items()}
    entry = AuditEntry.objects.get(action="read:open", object_id=str(opened.pk))
    assert entry.after["prefilled_marks"] == EXPECTED_PREFILL
    # The reader changes a call and gives confidences: the record of what was pre-filled stays as it was
    report = complete(paired["trial"])
    done, _ = services.submit_read(m.user, opened, report)
    assert done.prefilled_marks == EXPECTED_PREFILL and done.finding_marks == report["finding_marks"]
    assert sorted(done.flipped_findings) == ["atelectasis", "lung_opacity", "pleural_effusion"]

    un = paired["un_reader"]  # the unassisted arm: nothing pre-filled
    plain = services.open_read(un.user, reads_of(un).first())
    assert plain.prefilled_marks == {} and plain.finding_marks == {}


def test_the_finding_prefill_is_a_trial_setting(paired):
    from trial.models import Trial

    Trial.objects.filter(pk=paired["trial"].pk).update(prefill_draft_findings=False)
    m = paired["ai_reader"]
    opened = services.open_read(m.user, reads_of(m).first())
    assert opened.findings_text == DRAFT_FINDINGS  # the text still comes from the draft
    assert opened.prefilled_marks == {} and opened.finding_marks == {}


def test_heartbeat_is_capped_by_wall_time(paired):
    m = paired["un_reader"]
    read = services.open_read(m.user, reads_of(m).first())
    services.heartbeat(m.user, read, 500)  # claims 500 s a moment after opening
    read.refresh_from_db()
    assert read.active_seconds < 2
    Read.objects.filter(pk=read.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=30))
    before = read.active_seconds
    services.heartbeat(m.user, read, 500)
    read.refresh_from_db()
    assert 29 <= read.active_seconds - before <= 31
    Read.objects.filter(pk=read.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=30))
    services.heartbeat(m.user, read, 8)
    read.refresh_from_db()
    assert read.active_seconds - before == pytest.approx(38, abs=1.5)
    with pytest.raises(InvalidInput):
        services.heartbeat(m.user, read, "lots")
    with pytest.raises(InvalidInput):
        services.heartbeat(m.user, read, -3)


def test_submit_measures_draft_changes_and_times(paired):
    m = paired["ai_reader"]
    read = services.open_read(m.user, reads_of(m).first())
    Read.objects.filter(pk=read.pk).update(opened_at=timezone.now() - timedelta(seconds=90),
                                           last_heartbeat_at=timezone.now() - timedelta(seconds=20))
    payload = complete(paired["trial"])
    payload["findings_text"] = DRAFT_FINDINGS.replace("left apex", "right apex")
    payload["finding_marks"]["pleural_effusion"]["present"] = True  # agrees with p=0.87
    saved, created = services.submit_read(m.user, read, payload, seconds=15)
    assert created and saved.status == Read.Status.DONE
    assert 89 <= saved.wall_seconds <= 95 and saved.active_seconds == pytest.approx(15, abs=0.5)
    assert 0 < saved.draft_edit_distance < 1
    # atelectasis (0.61) and lung opacity (0.91) marked absent flip; pleural effusion agrees; the rest agree absent
    assert sorted(saved.flipped_findings) == ["atelectasis", "lung_opacity"]
    assert AuditEntry.objects.filter(action="read:submit", object_id=str(read.pk)).count() == 1


def test_double_submit_answers_with_the_saved_result(paired):
    m = paired["un_reader"]
    read = reads_of(m).first()
    c = client_for(m.user)
    assert c.post(api(read, "open")).status_code == 200
    first = c.post(api(read, "submit"), complete(paired["trial"]), format="json")
    second = c.post(api(read, "submit"), {**complete(paired["trial"]), "impression_text": "Changed."}, format="json")
    assert first.status_code == second.status_code == 200
    assert first.json()["already_submitted"] is False and second.json()["already_submitted"] is True
    assert second.json()["report"]["impression_text"] == "Normal chest."
    assert second.json()["submitted_at"] == first.json()["submitted_at"]
    # a late autosave and heartbeat (closing tab) change nothing and are not errors
    assert c.post(api(read, "autosave"), {"findings_text": "late"}, format="json").json()["submitted"] is True
    assert c.post(api(read, "heartbeat"), {"seconds": 5}, format="json").status_code == 200
    read.refresh_from_db()
    assert read.findings_text == "Clear lungs." and read.status == Read.Status.DONE
    assert AuditEntry.objects.filter(action="read:submit", object_id=str(read.pk)).count() == 1


def test_submit_after_lock_is_refused_and_changes_nothing(paired):
    m = paired["un_reader"]
    read = services.open_read(m.user, reads_of(m).first())
    trial_services.lock_trial(paired["coordinator"], paired["trial"], reason="end of study")
    with pytest.raises(TrialLocked):
        services.submit_read(m.user, read, complete(paired["trial"]))
    r = client_for(m.user).post(api(read, "submit"), complete(paired["trial"]), format="json")
    assert r.status_code == 409 and r.json()["code"] == "trial_locked"
    assert client_for(m.user).post(api(read, "autosave"), {"findings_text": "x"}, format="json").status_code == 409
    read.refresh_from_db()
    assert read.submitted_at is None and Read.objects.filter(submitted_at__isnull=False).count() == 0


def test_another_readers_read_is_refused(paired):
    owner, other = paired["un_reader"], paired["ai_reader"]
    read = reads_of(owner).first()
    with pytest.raises(Http404):
        services.submit_read(other.user, read, complete(paired["trial"]))
    c = client_for(other.user)
    for action in ("", "open", "heartbeat", "autosave", "submit"):  # the 404 of an unknown id: nothing told
        r = c.post(api(read, action), complete(paired["trial"]), format="json") if action else c.get(api(read))
        assert r.status_code == 404, action
    assert c.get(reverse("reading-api:detail", args=["no-such-read"])).status_code == 404
    expert = paired["experts"][0].user
    assert client_for(expert).get(api(read)).status_code == 404
    assert client_for(expert).get(reverse("reading-api:worklist", args=["RD1"])).status_code == 403
    read.refresh_from_db()
    assert read.opened_at is None and read.submitted_at is None


@pytest.mark.parametrize("body,content_type", [
    ("not json at all", "application/json"),
    (json.dumps([1, 2, 3]), "application/json"),
    (json.dumps({"findings_text": 42}), "application/json"),
    (json.dumps({"findings_text": "a", "finding_marks": ["x"]}), "application/json"),
    (json.dumps({"findings_text": "a", "finding_marks": {"no_such": {"present": True, "confidence": 3}}}),
     "application/json"),
    (json.dumps({"findings_text": "a", "finding_marks": {"pneumothorax": {"present": "yes", "confidence": 3}}}),
     "application/json"),
    (json.dumps({"findings_text": "a", "finding_marks": {"pneumothorax": {"present": True, "confidence": 7}}}),
     "application/json"),
    (json.dumps({"findings_text": "a", "finding_marks": {"pneumothorax": {"present": True, "confidence": 3}}}),
     "application/json"),
    (json.dumps({"findings_text": "", "impression_text": " ", "finding_marks": {}}), "application/json"),
    (json.dumps({"findings_text": "a" * 20001}), "application/json"),
])
def test_malformed_submit_gets_a_clear_400(paired, body, content_type):
    m = paired["un_reader"]
    read = reads_of(m).first()
    c = client_for(m.user)
    r = c.post(api(read, "submit"), body, content_type=content_type)
    assert r.status_code == 400
    assert r.json()["code"] and r.json()["detail"]
    read.refresh_from_db()
    assert read.submitted_at is None
    ok = c.post(api(read, "submit"), complete(paired["trial"]), format="json")
    assert ok.status_code == 200
    assert Read.objects.filter(submitted_at__isnull=False).count() == 1


def test_malformed_heartbeat_and_autosave(paired):
    m = paired["un_reader"]
    read = reads_of(m).first()
    c = client_for(m.user)
    c.post(api(read, "open"))
    assert c.post(api(read, "heartbeat"), {"seconds": "soon"}, format="json").status_code == 400
    assert c.post(api(read, "heartbeat"), "[]", content_type="application/json").status_code == 400
    bad = {"finding_marks": {"pneumothorax": {"present": True, "confidence": 0}}}
    assert c.post(api(read, "autosave"), bad, format="json").status_code == 400
    partial = {"findings_text": "Half", "finding_marks": {"pneumothorax": {"present": True, "confidence": None}}}
    r = c.post(api(read, "autosave"), partial, format="json")
    assert r.status_code == 200 and r.json()["autosaved_at"]
    read.refresh_from_db()
    assert read.findings_text == "Half" and read.finding_marks["pneumothorax"] == {"present": True, "confidence": None}


def test_unassisted_api_has_no_draft_field(paired):
    un, ai = paired["un_reader"], paired["ai_reader"]
    un_read = reads_of(un).first()
    c = client_for(un.user)
    bodies = [c.get(reverse("reading-api:worklist", args=["RD1"])), c.get(api(un_read)),
              c.post(api(un_read, "open")),
              c.post(api(un_read, "autosave"), {"findings_text": "x"}, format="json"),
              c.post(api(un_read, "heartbeat"), {"seconds": 1}, format="json"),
              c.post(api(un_read, "submit"), complete(paired["trial"]), format="json")]
    for r in bodies:
        assert r.status_code == 200
        text = r.content.decode()
        assert "draft" not in text.lower() and "0.8731" not in text and "Zebra" not in text
    assert "draft" not in bodies[-1].json()
    ai_read = reads_of(ai).first()
    ai_body = client_for(ai.user).post(api(ai_read, "open")).json()
    assert ai_body["draft"]["findings_text"] == DRAFT_FINDINGS
    assert ai_body["draft"]["probabilities"]["pleural_effusion"] == 0.8731
    assert ai_body["report"]["findings_text"] == DRAFT_FINDINGS


def test_worklist_api_counts_and_next(paired):
    m = paired["un_reader"]
    c = client_for(m.user)
    body = c.get(reverse("reading-api:worklist", args=["RD1"])).json()
    assert body["counts"]["todo"] == len(body["reads"]) == 2  # 4 cases over 2 centers
    assert body["next"] == body["reads"][0]["public_id"]
    assert [r["position"] for r in body["reads"]] == [1, 2]


def test_worklist_is_paginated_with_counts_and_next_over_all_pages(paired, monkeypatch):
    from reading import selectors

    monkeypatch.setattr(selectors, "WORKLIST_PAGE_SIZE", 1)
    m = paired["un_reader"]
    c = client_for(m.user)
    first = c.get(reverse("reading-api:worklist", args=["RD1"])).json()
    second = c.get(reverse("reading-api:worklist", args=["RD1"]), {"page": "2"}).json()
    assert (first["page"], first["pages"], second["page"]) == (1, 2, 2)
    assert [r["position"] for r in first["reads"] + second["reads"]] == [1, 2]
    assert first["counts"] == second["counts"] and first["counts"]["todo"] == 2
    # The read in progress is "next" wherever it sits in the order, on every page.
    later = second["reads"][0]["public_id"]
    assert c.post(reverse("reading-api:open", args=[later])).status_code == 200
    again = c.get(reverse("reading-api:worklist", args=["RD1"])).json()
    assert again["next"] == later and again["counts"]["in_progress"] == 1
    # Out-of-range or junk page numbers give the nearest real page, not an error.
    assert c.get(reverse("reading-api:worklist", args=["RD1"]), {"page": "99"}).json()["page"] == 2
    assert c.get(reverse("reading-api:worklist", args=["RD1"]), {"page": "x"}).json()["page"] == 1
    # The page shows the pager and numbers rows across pages.
    c.force_login(m.user)
    html = c.get(reverse("reading:worklist", args=["RD1"]), {"page": "2"}).content.decode()
    assert "page 2 of 2" in html and "<td>2</td>" in html


def test_ai_api_carries_the_drafts_boxes_and_a_withheld_draft_none(paired):
    from inference.models import Draft, OodAction

    ai = paired["ai_reader"]
    reads = list(reads_of(ai)[:2])
    image = reads[0].case.images.first().public_id
    box = {"finding": "pleural_effusion", "x0": 10.0, "y0": 20.0, "x1": 110.0, "y1": 220.0, "score": 1.0,
           "label": "left effusion", "reasoning": "", "image": image}
    Draft.objects.filter(case=reads[0].case).update(boxes=[box, {**box, "finding": "not_a_trial_finding"}])
    Draft.objects.filter(case=reads[1].case).update(boxes=[box], ood_action=OodAction.WITHHELD,
                                                    ood_reasons=["noise"])
    c = client_for(ai.user)
    body = c.post(api(reads[0], "open")).json()
    # trial findings only, each with its id in the draft (issue 21: what the reader's accept/reject names)
    assert body["draft"]["boxes"] == [{"id": "b0", **{k: box[k] for k in box if k != "score"}}]
    assert body["draft"]["ood"] == {"action": "", "reasons": [], "warning": ""}
    withheld = c.post(api(reads[1], "open")).json()
    assert withheld["draft"]["boxes"] == [] and withheld["draft"]["findings_text"] == ""
    assert withheld["report"]["findings_text"] == ""  # not prefilled from a withheld draft
    assert "noise" in withheld["draft"]["ood"]["warning"]
