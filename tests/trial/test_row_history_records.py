"""The Row history page also shows the trial's record tables (issue 18): reads (a row per heartbeat, paged in the
database), read amendments, ratings, rating amendments, drafts and analysis runs, filtered by table, row, kind of
write and writes made outside the application; only for a coordinator who is not blinded, as the audit log."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from analysis.models import AnalysisRun
from inference.models import Draft
from inference.services import register_model_version, set_arena_model_versions
from rating import services as rating_services
from rating.models import ArenaTask, Rating
from reading import services as reading_services
from reading.models import Read
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.factories.reading import ready_draft
from trial import selectors
from trial.selectors import RowFilter

# Committed, like production: pghistory's context (who, why) is per transaction (see tests/trial/test_row_history.py)
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.requirement("AUD-8")]


@pytest.fixture
def t(transactional_db):
    t = rating_trial(code="RHR", experts=1, panel=1, cases=2, ai_model=True)
    done = complete_case(t["cases"][0])[0]
    marks = {c: {"present": True, "confidence": 3} for c in t["trial"].finding_codes}
    reading_services.amend_read(actor=done.reader.user, read=done, reason="Missed it", report={
        "findings_text": "Opacity.", "impression_text": "Pneumonia.", "finding_marks": marks})
    t["rating"] = Rating.objects.filter(case=t["cases"][0]).first()
    expert = t["rating"].expert.user
    rating_services.submit_rating(expert, t["rating"], GOOD)
    rating_services.amend_rating(actor=expert, rating=t["rating"], answer={"quality_a": 2}, reason="Second look")
    open_read = Read.objects.filter(case=t["cases"][1], arm__code="unassisted").order_by("pk").first()
    t["open_read"] = reading_services.open_read(open_read.reader.user, open_read)
    for _ in range(55):  # each heartbeat writes an event row
        reading_services.heartbeat(open_read.reader.user, open_read, 5)
    t["run"] = AnalysisRun.objects.create(trial=t["trial"], requested_by=t["coordinator"])
    AnalysisRun.objects.filter(pk=t["run"].pk).update(status=AnalysisRun.Status.RUNNING, progress=40)
    # The standalone arena's tasks (issue 20 item 1): a second version's draft of case 0, one task, submitted.
    base = Draft.objects.filter(case=t["cases"][0]).first()
    second = register_model_version(name="rhr-arena-2", backend="retrieval")
    set_arena_model_versions(actor=t["coordinator"], trial=t["trial"], model_versions=[base.model_version, second])
    ready_draft(t["cases"][0], second, findings_text="Lungs clear.", impression_text="Normal.")
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    task = ArenaTask.objects.get(case=t["cases"][0])
    rating_services.submit_arena_task(expert, task, {"preference": "tie"})
    rating_services.amend_arena_task(actor=expert, task=task, answer={"preference": "A"}, reason="Arena second look")
    return t


def client_of(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_every_record_table_is_listed_with_its_changes(t):
    coord, trial = t["coordinator"], t["trial"]
    for table in selectors.RECORD_TABLES:
        page = selectors.record_history(coord, trial, table)
        assert page.paginator.count > 0, table
        assert all(c.table == table for c in page)
    amendment = selectors.record_history(coord, trial, "rating.RatingAmendment")[0]
    assert amendment.label == "insert" and amendment.actor == t["rating"].expert.user.username
    assert {f.field: f.new for f in amendment.changes}["reason"] == "Second look"
    rating_changes = selectors.record_history(coord, trial, "rating.Rating", RowFilter(
        object_id=str(t["rating"].pk), label="update"))
    assert any(f.field == "quality_a" and f.new == 4 for c in rating_changes for f in c.changes)
    run = selectors.record_history(coord, trial, "analysis.AnalysisRun", RowFilter(object_id=str(t["run"].pk)))
    assert [c.label for c in run] == ["update", "insert"]
    assert {f.field: (f.old, f.new) for f in run[0].changes} == {"status": ("queued", "running"), "progress": (0, 40)}


def test_heartbeats_are_paged_and_each_shows_only_what_it_changed(t):
    coord, trial, read = t["coordinator"], t["trial"], t["open_read"]
    rows = RowFilter(object_id=str(read.pk), label="update")
    first = selectors.record_history(coord, trial, "reading.Read", rows)
    assert first.paginator.count >= 55 and len(first.object_list) == selectors.ROW_PAGE_SIZE
    assert first.has_next()
    beat = first.object_list[0]
    assert "active_seconds" in {f.field for f in beat.changes}
    assert "findings_text" not in {f.field for f in beat.changes}  # compared with the row's previous event
    second = selectors.record_history(coord, trial, "reading.Read", rows, page=2)
    assert second.object_list and {c.event_id for c in second}.isdisjoint({c.event_id for c in first})
    assert max(c.event_id for c in second) < min(c.event_id for c in first)  # newest first


def test_the_page_filters_pages_and_marks_raw_sql(t):
    trial, read = t["trial"], t["open_read"]
    with connection.cursor() as cur:
        cur.execute("UPDATE reading_read SET impression_text = %s WHERE id = %s", ["Tampered.", read.pk])
    c = client_of(t["coordinator"])
    url = reverse("trial:row_history", args=[trial.code])
    page = c.get(url, {"table": "reading.Read", "outside": "1"})
    assert page.status_code == 200
    rows = page.context["changes"].object_list
    # (the test's heartbeats came without a request or service context: outside the application too)
    assert rows and all(r.outside_app for r in rows) and rows[0].object_id == str(read.pk)
    assert [(f.field, f.new) for f in rows[0].changes] == [("impression_text", "Tampered.")]
    assert "outside the application" in page.content.decode()
    # the amendment came through the service, with who and why: not outside the application
    assert c.get(url, {"table": "reading.ReadAmendment", "outside": "1"}).context["changes"].paginator.count == 0
    assert c.get(url, {"table": "reading.ReadAmendment"}).context["changes"].paginator.count == 1
    paged = c.get(url, {"table": "reading.Read", "row": str(read.pk)})
    html = paged.content.decode()
    assert paged.context["changes"].has_next() and "table=reading.Read&amp;row=" in html and "page=2" in html
    assert c.get(url, {"table": "reading.Read", "row": "abc"}).context["changes"].paginator.count == 0
    # an unknown table falls back to the setup tables
    assert {r.table for r in c.get(url, {"table": "nope"}).context["changes"]} <= {
        f"trial.{n}" for n in selectors.HISTORY_TABLES}


def test_blinded_people_and_others_are_refused(t):
    url = reverse("trial:row_history", args=[t["trial"].code])
    for user in (t["readers"][0].user, t["rating"].expert.user, t["statistician"].user):
        assert client_of(user).get(url, {"table": "reading.Read"}).status_code == 403
