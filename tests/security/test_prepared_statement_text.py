"""User text through the prepared-statements backend (core/db/postgresql/base.py; ninth session, helper attack).

Writes that pghistory prefixes with its context (user, URL, and the service's reason) are bound on the client
(psycopg's ClientCursor.mogrify) and sent as one simple query; everything else is bound by the server. Quotes,
backslashes, placeholders (`%s`, `%(x)s`, `$1`), SQL, control characters and non-ASCII text in a report and in an
amendment reason (which goes into the context) come back byte for byte, in the row and in the row history's
context; nothing else is written. Held: no fix was needed (pghistory serialises the context as ASCII JSON, and
psycopg quotes it, E'' where a backslash needs it)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from reading.models import ReadAmendment
from tests.clients import token_client
from tests.factories.reading import reader_in, reads_of
from tests.factories.trial import add_cases, make_trial

pytestmark = pytest.mark.django_db

TRICKY = [
    "O'Brien's \\ back\\slash \\' \\\\'",
    "'); DROP TABLE reading_read; --",
    "%s %(x)s %% $1 $$ E'\\x41' ? :name",
    "naïve ünïcödé 肺 😀 \u202e reversed \u2028\u2029",
    "line1\nline2\ttab \x01\x1f\x7f",  # (a report's \r\n is stored as \n: the form's rule, not quoting)
    '{"json": [1, 2], "url": "/x"}',
]


@pytest.fixture(autouse=True)
def _no_drafts_task(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def _report(trial, text: str, impression: str) -> dict:
    return {"findings_text": text, "impression_text": impression,
            "finding_marks": {c: {"present": False, "confidence": 4} for c in trial.finding_codes}}


def test_odd_text_in_reports_and_amendment_reasons_is_stored_as_sent_and_in_the_row_history():
    assert connection.settings_dict["ENGINE"] == "core.db.postgresql"  # the backend under attack
    t = make_trial(code="PSQ", ai_model=False)
    add_cases(t, 2)
    m = reader_in(t, "unassisted")
    read = reads_of(m)[0]
    api = token_client(m.user)
    r = api.post(reverse("reading-api:submit", args=[read.public_id]),
                 _report(t["trial"], TRICKY[0], TRICKY[1]), format="json")
    assert r.status_code == 200, r.content
    read.refresh_from_db()
    assert (read.findings_text, read.impression_text) == (TRICKY[0], TRICKY[1])
    event_models = list(ReadAmendment.pgh_event_models.values())
    url = reverse("reading-api:amend", args=[read.public_id])
    for i, text in enumerate(TRICKY):
        body = {**_report(t["trial"], text, f"{text} #{i}"), "reason": f"{text} #{i}"}
        r = api.post(url, body, format="json")
        assert r.status_code == 200, (text, r.content)
        amendment = ReadAmendment.objects.get(read=read, number=i + 1)
        assert amendment.reason == f"{text} #{i}".strip()
        assert amendment.amended["findings_text"] == text and amendment.amended["impression_text"] == f"{text} #{i}"
        ev = next(e for model in event_models for e in model.objects.filter(pgh_obj_id=amendment.pk)
                  .select_related("pgh_context"))
        assert ev.pgh_context.metadata == {"user": m.user.pk, "url": url, "actor": m.user.pk,
                                           "reason": f"{text} #{i}".strip()}
    read.refresh_from_db()
    assert read.findings_text == TRICKY[0]  # the first submission stays (amendments are stored beside it)
    assert ReadAmendment.objects.filter(read=read).count() == len(TRICKY)
