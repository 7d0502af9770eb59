"""The AI-arm reader's accept/reject decision on each AI box (issue 21 item 1): autosaved and submitted with the
report, checked against the draft's boxes (never for an unassisted read or a withheld draft), in the reader's
payload, exported after lock only, and read back by the analysis."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from analysis.export import TABLES_WITHHELD_BEFORE_LOCK, build_export
from analysis.pipeline import prepare_tables, read_export_tables
from analysis.stats.box_review import box_review_summary
from inference.models import Draft, OodAction
from reading import services
from reading.models import Read
from tests.factories.reading import reads_of
from trial import services as trial_services
from trial.models import AuditEntry

pytestmark = pytest.mark.django_db

BOXES = [
    {"finding": "pleural_effusion", "x0": 10.0, "y0": 20.0, "x1": 90.0, "y1": 120.0, "label": "left effusion"},
    {"finding": "not_a_trial_finding", "x0": 1.0, "y0": 1.0, "x1": 5.0, "y1": 5.0},  # never shown
    {"finding": "cardiomegaly", "x0": 50.0, "y0": 60.0, "x1": 200.0, "y1": 180.0, "label": ""},
]


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def _open_ai_read(paired):
    m = paired["ai_reader"]
    read = reads_of(m).first()
    Draft.objects.filter(case=read.case).update(boxes=BOXES)
    return m, services.open_read(m.user, read)


def _autosave(user, read, **body):
    return client_for(user).post(reverse("reading-api:autosave", args=[read.public_id]),
                                 {"findings_text": "x", **body}, format="json")


def test_the_ai_reader_accepts_and_rejects_boxes_with_the_autosave_and_the_submit(paired):
    m, read = _open_ai_read(paired)
    detail = client_for(m.user).get(reverse("reading-api:detail", args=[read.public_id])).json()
    # Ids are the boxes' places in the draft: the box of a finding the trial does not have is not shown
    assert [b["id"] for b in detail["draft"]["boxes"]] == ["b0", "b2"]
    assert detail["draft"]["box_reviews"] == {}

    r = _autosave(m.user, read, box_reviews={"b0": "accepted", "b2": "rejected"})
    assert r.status_code == 200, r.content
    read.refresh_from_db()
    assert read.box_reviews == {"b0": "accepted", "b2": "rejected"}
    # An autosave without the key leaves them; null clears one decision
    assert _autosave(m.user, read).status_code == 200
    read.refresh_from_db()
    assert read.box_reviews == {"b0": "accepted", "b2": "rejected"}
    assert _autosave(m.user, read, box_reviews={"b0": "accepted", "b2": None}).status_code == 200
    read.refresh_from_db()
    assert read.box_reviews == {"b0": "accepted"}
    detail = client_for(m.user).get(reverse("reading-api:detail", args=[read.public_id])).json()
    assert detail["draft"]["box_reviews"] == {"b0": "accepted"}

    body = {"findings_text": "Effusion.", "impression_text": "",
            "finding_marks": {c: {"present": False, "confidence": 3} for c in paired["trial"].finding_codes},
            "box_reviews": {"b0": "rejected", "b2": "accepted"}}
    r = client_for(m.user).post(reverse("reading-api:submit", args=[read.public_id]), body, format="json")
    assert r.status_code == 200, r.content
    read.refresh_from_db()
    assert read.box_reviews == {"b0": "rejected", "b2": "accepted"}
    entry = AuditEntry.objects.get(action="read:submit", object_id=str(read.pk))
    assert "b0" in str(entry.after)  # the submitted decisions are in the audit trail
    # After submit an autosave changes nothing
    _autosave(m.user, read, box_reviews={"b0": "accepted"})
    read.refresh_from_db()
    assert read.box_reviews == {"b0": "rejected", "b2": "accepted"}


@pytest.mark.parametrize("reviews, words", [
    ({"b1": "accepted"}, "Unknown boxes: b1"),          # the box of a finding the trial lacks was not shown
    ({"b9": "accepted"}, "Unknown boxes: b9"),
    ({"b0": "maybe"}, "accepted or rejected"),
    (["b0"], "must be an object"),
])
def test_box_ids_and_decisions_are_checked_against_the_draft(paired, reviews, words):
    m, read = _open_ai_read(paired)
    r = _autosave(m.user, read, box_reviews=reviews)
    assert r.status_code == 400 and r.json()["code"] == "invalid" and words in r.json()["detail"], r.content
    read.refresh_from_db()
    assert read.box_reviews == {}


def test_no_box_decision_for_an_unassisted_read_or_a_withheld_draft(paired):
    m = paired["un_reader"]
    un = services.open_read(m.user, reads_of(m).first())
    Draft.objects.filter(case=un.case).update(boxes=BOXES)
    r = _autosave(m.user, un, box_reviews={"b0": "accepted"})
    assert r.status_code == 400 and "no AI boxes" in r.json()["detail"]
    assert _autosave(m.user, un, box_reviews={}).status_code == 200  # nothing to say: accepted
    detail = client_for(m.user).get(reverse("reading-api:detail", args=[un.public_id])).json()
    assert "draft" not in detail and "box_reviews" not in str(detail)

    ai, read = _open_ai_read(paired)
    Draft.objects.filter(case=read.case).update(ood_action=OodAction.WITHHELD, ood_reasons=["noise"])
    r = _autosave(ai.user, read, box_reviews={"b0": "accepted"})
    assert r.status_code == 400 and "no AI boxes" in r.json()["detail"]


def test_box_decisions_are_exported_after_lock_only_and_the_analysis_reads_them(paired, tmp_path):
    m, read = _open_ai_read(paired)
    trial = paired["trial"]
    case = read.case
    case.reference_findings = {"pleural_effusion": 1, "cardiomegaly": 0}
    case.save(update_fields=["reference_findings"])
    services.submit_read(m.user, Read.objects.get(pk=read.pk), {
        "findings_text": "Effusion.", "finding_marks": {c: {"present": c == "pleural_effusion", "confidence": 4}
                                                        for c in trial.finding_codes},
        "box_reviews": {"b0": "accepted", "b2": "rejected"}})

    before = build_export(trial)
    assert "box_reviews" not in before.tables and "box_reviews" in TABLES_WITHHELD_BEFORE_LOCK
    assert "box_reviews" in before.manifest["tables_withheld_until_lock"]
    assert not any(d["table"] == "box_reviews" for d in before.dictionary)
    assert "accepted" not in before.csv_text("reads")

    trial_services.lock_trial(paired["coordinator"], trial, reason="end of study")
    trial.refresh_from_db()
    after = build_export(trial)
    rows = after.tables["box_reviews"]
    mine = [r for r in rows if r["read_id"] == read.public_id]
    assert [(r["box_id"], r["finding"], r["decision"], r["submitted"], r["arm"]) for r in mine] == [
        ("b0", "pleural_effusion", "accepted", 1, "ai_assisted"), ("b2", "cardiomegaly", "rejected", 1, "ai_assisted")]
    assert {r["arm"] for r in rows} == {"ai_assisted"}  # only AI-arm reads show boxes
    assert {d["column"] for d in after.dictionary if d["table"] == "box_reviews"} >= {"decision", "box_id"}

    after.write(tmp_path)
    tables = prepare_tables(read_export_tables(tmp_path))
    res = box_review_summary(tables["box_reviews"], tables["cases"])
    assert (res.overall.shown, res.overall.accepted, res.overall.rejected) == (2, 1, 1)
    pe = next(f for f in res.findings if f.finding == "pleural_effusion")
    assert (pe.accepted_present.k, pe.accepted_present.n) == (1, 1)
    cm = next(f for f in res.findings if f.finding == "cardiomegaly")
    assert (cm.rejected_present.k, cm.rejected_present.n) == (0, 1)
