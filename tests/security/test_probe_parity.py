"""A probe of someone else's id answers exactly as a made-up id (ninth session, helper attack).

Leaked, fixed: a reader probing another reader's read (its public id seen over a shoulder or in a shared browser's
history) got 403 "This read is assigned to another reader." where a made-up id got 404, on the read page, the read
API (detail, open, submit, amend), the amendment page and the light lane: the id's existence, and through the lock
of `_locked_own_read`, whether its reader was submitting at that moment (the probe waited on their row lock). Now
ownership is in the WHERE of the one query each path makes (reading.selectors.read_for_reader, check_own_read,
read_for_amendment; reading.services._locked_own_read): another's read is never loaded or locked, and the answer,
the SQL statements and their number are the unknown id's.

Measured before the fix, in process (median of 40, this machine): the statuses differed (so timing was moot);
the amendment page made 5 queries for another's read and 4 for an unknown id, the API amend 3 and 2, and the
403 path cost 7-13 ms more than the 404 path (Django logs a refusal with its traceback). After: the same statements;
the medians differ by less than the run-to-run noise (about 0.3 ms). The expert's probes of other experts' rating
tasks were already one path (6 statements each, 404). The tests compare statements, not times (a timing test
would be flaky on a shared machine)."""
from __future__ import annotations

import json
import re
import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction
from django.test.utils import CaptureQueriesContext

from imaging.models import Image
from rating.models import Rating
from reading.models import Read
from tests.clients import browser_client, token_client
from tests.factories.rating import complete_case, rating_trial
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts

MADE_UP = "AbCdEfGhIjKlMnOp"
_TIME = re.compile(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00'")  # the clock in a session lookup
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')


@pytest.fixture(autouse=True)
def _no_drafts_task(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def _call(client, method: str, path: str):
    if method == "get":
        return client.get(path)
    return client.post(path, json.dumps({"seconds": 5, "findings_text": "x"}), content_type="application/json")


def _probe(client, method: str, template: str, public_id: str) -> tuple[int, bytes, list[str]]:
    """The answer and the SQL statements, with the probed id written out as ID."""
    with CaptureQueriesContext(connection) as q:
        r = _call(client, method, template.format(public_id))
    body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", r.content).replace(public_id.encode(), b"ID")
    sql = [_SAVEPOINT.sub("SP", _TIME.sub("NOW", s["sql"])).replace(public_id, "ID") for s in q.captured_queries]
    return r.status_code, body, sql


READER_ROUTES = [
    ("page", "get", "/reading/PAR/read/{}/"),
    ("page", "post", "/reading/PAR/read/{}/submit/"),
    ("page", "get", "/reading/PAR/read/{}/amend/"),
    ("token", "get", "/api/reading/reads/{}/"),
    ("token", "post", "/api/reading/reads/{}/open/"),
    ("token", "post", "/api/reading/reads/{}/submit/"),
    ("token", "post", "/api/reading/reads/{}/amend/"),
    ("token", "post", "/api/reading/reads/{}/heartbeat/"),
    ("lane", "post", "/api/reading/reads/{}/heartbeat/"),  # session + JSON: the light lane
    ("lane", "post", "/api/reading/reads/{}/autosave/"),
]


@pytest.mark.django_db
def test_a_readers_probe_of_another_readers_read_is_the_made_up_ids_answer_statement_for_statement():
    t = rating_trial(code="PAR", cases=4)
    complete_case(t["cases"][0])
    me, other = reader_in(t, "unassisted"), reader_in(t, "ai_assisted")
    theirs = reads_of(other)
    opened = next(r for r in theirs if not r.submitted_at)
    Read.objects.filter(pk=opened.pk).update(opened_at=theirs[0].submitted_at)  # open: the lane's fast path's kind
    probes = {"submitted": next(r for r in theirs if r.submitted_at).public_id, "open": opened.public_id}
    clients = {"page": browser_client(me.user), "lane": browser_client(me.user), "token": token_client(me.user)}
    before = list(Read.objects.order_by("pk").values())
    for who, method, template in READER_ROUTES:
        c = clients[who]
        _probe(c, method, template, MADE_UP)  # warm (compiled queries, prepared statements, session)
        baseline = _probe(c, method, template, MADE_UP)
        assert baseline[0] == 404, (template, baseline[0])
        for kind, public_id in probes.items():
            assert _probe(c, method, template, public_id) == baseline, (template, kind)
    assert list(Read.objects.order_by("pk").values()) == before


@pytest.mark.django_db
def test_an_experts_probe_of_another_experts_task_is_the_made_up_ids_answer_statement_for_statement():
    t = rating_trial(code="PAR", cases=2, experts=3, panel=1)
    for case in t["cases"]:
        complete_case(case)
    me = t["experts"][0]
    theirs = Rating.objects.exclude(expert=me).first()
    assert theirs is not None
    c = browser_client(me.user)
    for method, template in [("get", "/rating/PAR/{}/"), ("get", "/rating/PAR/{}/amend/"),
                             ("get", "/api/rating/PAR/{}/"), ("post", "/api/rating/PAR/{}/open/"),
                             ("post", "/api/rating/PAR/{}/autosave/"), ("post", "/api/rating/PAR/{}/submit/")]:
        _probe(c, method, template, MADE_UP)
        baseline = _probe(c, method, template, MADE_UP)
        assert baseline[0] == 404
        assert _probe(c, method, template, theirs.public_id) == baseline, template


@pytest.mark.django_db(transaction=True)
def test_a_probe_never_waits_on_the_row_lock_of_a_read_being_submitted():
    """The owner's submit holds their read's row; a probe of that id from another reader answers 404 at once.
    Before: the lane's fallback, open and submit locked the row by id alone and waited for the owner's
    transaction, so a slow 403 told the prober the read existed and was being written."""
    t = rating_trial(code="PAR", cases=2)
    me, other = reader_in(t, "unassisted"), reader_in(t, "ai_assisted")
    target = reads_of(other)[0]
    Read.objects.filter(pk=target.pk).update(opened_at=target.case.enrolled_at)
    routes = [("lane", "post", "/api/reading/reads/{}/heartbeat/"), ("lane", "post", "/api/reading/reads/{}/autosave/"),
              ("token", "post", "/api/reading/reads/{}/open/"), ("token", "post", "/api/reading/reads/{}/submit/"),
              ("page", "get", "/reading/PAR/read/{}/")]
    answers: dict = {}

    def probe():
        try:
            clients = {"page": browser_client(me.user), "lane": browser_client(me.user),
                       "token": token_client(me.user)}
            for who, method, template in routes:
                start = time.monotonic()
                r = _call(clients[who], method, template.format(target.public_id))
                answers[template] = (r.status_code, time.monotonic() - start)
        finally:
            close_old_connections()

    with transaction.atomic():
        Read.objects.select_for_update().get(pk=target.pk)  # the owner's submit, mid-transaction
        worker = threading.Thread(target=probe)
        worker.start()
        worker.join(timeout=10)
        waited = worker.is_alive()
    worker.join()
    assert not waited, "a probe waited on another reader's row lock"
    assert {status for status, _ in answers.values()} == {404}
    assert max(seconds for _, seconds in answers.values()) < 5


@pytest.mark.django_db
def test_a_probe_of_an_image_of_someone_elses_case_is_the_made_up_ids_answer():
    """Before: 403 "You may not view this case's images." for an image id that exists, 404 for a made-up one.
    The answers are now the same; the statements are not (the viewer rules run for an image that exists: 7
    statements, against 3 for a made-up id), left as it is: image ids are 24 random hex characters, shown only on
    the pages of the cases a person may view."""
    t = rating_trial(code="PIM", cases=4)
    with_images_and_drafts(t, t["cases"])
    me, other = reader_in(t, "unassisted"), reader_in(t, "ai_assisted", 1)  # the other center's cases
    mine = {r.case_id for r in reads_of(me)}
    image = Image.objects.exclude(case_id__in=mine).filter(case__reads__reader=other).first()
    assert image is not None
    c = browser_client(me.user)
    for template in ("/reading/images/{}/meta.json", "/reading/images/{}/display.png", "/reading/images/{}/full.bin"):
        made_up = _probe(c, "get", template, "0123456789abcdef01234567")
        theirs = _probe(c, "get", template, image.public_id)
        assert made_up[0] == theirs[0] == 404 and made_up[1] == theirs[1], template
