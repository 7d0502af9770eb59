"""Row-level history by PostgreSQL triggers on the reading, rating and inference tables (issue 18 item 1): reads,
read amendments, ratings, rating amendments and drafts changed around the application (raw SQL, bulk updates) still
leave an event row with the values before and after."""
from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection

from inference.models import Draft
from rating import services as rating_services
from rating.models import Rating, RatingAmendment
from reading import services as reading_services
from reading.models import Read, ReadAmendment
from tests.factories.rating import GOOD, complete_case, rating_trial

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("AUD-8")]


def _events(app: str, model: str, pk: int) -> list:
    return list(apps.get_model(app, f"{model}Event").objects.filter(pgh_obj_id=pk).order_by("pgh_id"))


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cur:
        cur.execute(sql, params)


def test_raw_sql_writes_to_reads_ratings_amendments_and_drafts_leave_history(db):
    t = rating_trial(code="RHIST", experts=2, panel=2, cases=1, ai_model=True)
    reads = complete_case(t["cases"][0])
    read = reads[0]
    rating = Rating.objects.filter(expert=t["experts"][0]).get()
    user = t["experts"][0].user
    rating_services.submit_rating(user, rating, GOOD)
    r_amend, _ = rating_services.amend_rating(actor=user, rating=rating, answer={"quality_a": 2}, reason="x")
    reader = read.reader.user
    marks = {c: {"present": True, "confidence": 3} for c in t["trial"].finding_codes}
    a_amend, _ = reading_services.amend_read(actor=reader, read=read, reason="y", report={
        "findings_text": "Opacity.", "impression_text": "Pneumonia.", "finding_marks": marks})
    draft = Draft.objects.filter(case=t["cases"][0]).first()
    assert draft is not None

    cases = [
        ("reading", "Read", Read, read.pk, "UPDATE reading_read SET impression_text = %s WHERE id = %s",
         "Tampered.", "impression_text", read.impression_text),
        ("reading", "ReadAmendment", ReadAmendment, a_amend.pk,
         "UPDATE reading_readamendment SET reason = %s WHERE id = %s", "Tampered.", "reason", "y"),
        ("rating", "Rating", Rating, rating.pk, "UPDATE reading_rating SET quality_a = %s WHERE id = %s",
         1, "quality_a", GOOD["quality_a"]),
        ("rating", "RatingAmendment", RatingAmendment, r_amend.pk,
         "UPDATE rating_ratingamendment SET reason = %s WHERE id = %s", "Tampered.", "reason", "x"),
        ("inference", "Draft", Draft, draft.pk, "UPDATE inference_draft SET impression_text = %s WHERE id = %s",
         "Tampered.", "impression_text", draft.impression_text),
    ]
    for app, name, model, pk, sql, new, field, old in cases:
        before = _events(app, name, pk)
        assert before, f"{name}: the application's own writes leave history too"
        assert getattr(before[-1], field) == old, name
        _raw(sql, [new, pk])
        after = _events(app, name, pk)
        assert len(after) == len(before) + 1, name
        event = after[-1]
        assert event.pgh_label == "update" and getattr(event, field) == new, name
        assert getattr(model.objects.get(pk=pk), field) == new
    # A delete around the application is recorded too (the amendment row, with its last values).
    _raw("DELETE FROM rating_ratingamendment WHERE id = %s", [r_amend.pk])
    last = _events("rating", "RatingAmendment", r_amend.pk)[-1]
    assert last.pgh_label == "delete" and last.reason == "Tampered."
