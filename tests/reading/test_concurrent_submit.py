"""Two sessions (two tabs, or a retry racing the first try) submit the same read at the same moment, on
PostgreSQL: one report is stored, both get the saved result, one audit entry."""
from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from reading.models import Read
from tests.factories.reading import reader_in
from tests.factories.trial import add_cases, make_trial
from trial.models import AuditEntry


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_store_one_report():
    assert connection.vendor == "postgresql"
    t = make_trial(code="CC1", centers=1)
    add_cases(t, 1)
    m = reader_in(t, "unassisted")
    read = Read.objects.get(reader=m)
    marks = {c: {"present": False, "confidence": 3} for c in t["trial"].finding_codes}
    barrier = threading.Barrier(4)
    results: list = []

    def submit(i: int):
        c = Client()
        c.force_login(m.user)
        try:
            barrier.wait()
            r = c.post(reverse("reading-api:submit", args=[read.public_id]),
                       {"findings_text": f"tab {i}", "impression_text": "Normal.", "finding_marks": marks,
                        "seconds": 3}, content_type="application/json")
            results.append((r.status_code, r.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert [s for s, _ in results] == [200] * 4
    assert sum(not b["already_submitted"] for _, b in results) == 1
    stored = {b["report"]["findings_text"] for _, b in results}
    assert len(stored) == 1  # every answer is the one saved report
    assert {b["submitted_at"] for _, b in results} == {Read.objects.get(pk=read.pk).submitted_at.isoformat()}
    assert Read.objects.filter(pk=read.pk, status=Read.Status.DONE).count() == 1
    assert AuditEntry.objects.filter(action="read:submit", object_id=str(read.pk)).count() == 1
