"""The reader's pages without a browser: access, availability, the no-JavaScript submit and its repeat."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from reading.models import Read
from tests.factories.reading import reader_in, reads_of
from tests.factories.trial import add_cases, make_trial

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_worklist_page_and_next(paired):
    m = paired["un_reader"]
    c = _client(m.user)
    r = c.get(reverse("reading:worklist", args=["RD1"]))
    assert r.status_code == 200 and b'id="next-read"' in r.content
    first = reads_of(m).first()
    next_read = c.get(reverse("reading:next", args=["RD1"]))["Location"]
    assert next_read == reverse("reading:read", args=["RD1", first.public_id])
    worklist = reverse("reading:worklist", args=["RD1"])
    assert _client(paired["experts"][0].user).get(worklist).status_code == 403
    assert _client(paired["coordinator"]).get(reverse("reading:worklist", args=["RD1"])).status_code == 403


def test_ai_read_without_ready_draft_is_not_opened():
    t = make_trial(code="PG2", centers=1)
    (case,) = add_cases(t, 1)
    m = reader_in(t, "ai_assisted")
    read = Read.objects.get(reader=m)
    r = _client(m.user).get(reverse("reading:read", args=["PG2", read.public_id]))
    assert r.status_code == 409 and b"not ready" in r.content
    read.refresh_from_db()
    assert read.opened_at is None


def test_no_javascript_submit_and_repeat(paired):
    m = paired["un_reader"]
    read = reads_of(m).first()
    c = _client(m.user)
    page = c.get(reverse("reading:read", args=["RD1", read.public_id]))
    assert page.status_code == 200 and b"draft" not in page.content.lower()
    form = {"findings_text": "Clear.", "impression_text": "Normal."}
    form |= {f"present_{code}": "absent" for code in paired["trial"].finding_codes}
    form |= {f"confidence_{code}": "5" for code in paired["trial"].finding_codes}
    incomplete = {k: v for k, v in form.items() if k != "confidence_pneumothorax"}
    r = c.post(reverse("reading:submit", args=["RD1", read.public_id]), incomplete, follow=True)
    assert b"Mark pneumothorax" in r.content
    r1 = c.post(reverse("reading:submit", args=["RD1", read.public_id]), form, follow=True)
    assert b"Report submitted." in r1.content
    r2 = c.post(reverse("reading:submit", args=["RD1", read.public_id]),
                {**form, "findings_text": "x"}, follow=True)
    assert r2.status_code == 200 and b"already submitted" in r2.content
    read.refresh_from_db()
    assert read.findings_text == "Clear." and read.finding_marks["pneumothorax"] == {"present": False, "confidence": 5}
    other = paired["ai_reader"]
    assert _client(other.user).get(reverse("reading:read", args=["RD1", read.public_id])).status_code == 404
    assert _client(other.user).post(reverse("reading:submit", args=["RD1", read.public_id]),
                                    form).status_code == 404
    assert c.get(reverse("reading:read", args=["OTHER", read.public_id])).status_code == 404
