"""Issue 19.2: heartbeat and autosave take at most 3 queries, and no reader request's query count grows with the
number of cases. Counted with CaptureQueriesContext on real PostgreSQL, in transactional tests so that the count is
what production runs (no test savepoints around the services' transactions). Production with CACHE_URL (Redis) reads
sessions from the cache (cached_db): 3 queries per heartbeat/autosave; the demo without Redis keeps database
sessions: 4 (config/settings.py)."""
from __future__ import annotations

import json
import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reading import services
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial

AUTH_TABLES = ('"django_session"', '"auth_user"')  # the session middleware's two lookups, on every request
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")  # transaction control, logged by psycopg


def _data(queries) -> list[str]:
    """The statements that read or write rows (not BEGIN/COMMIT)."""
    return [q["sql"] for q in queries if not q["sql"].startswith(CONTROL)]


def _own(queries) -> list[str]:
    return [sql for sql in _data(queries) if not any(t in sql.split(" WHERE ")[0] for t in AUTH_TABLES)]


def _post(c: Client, name: str, read, body: dict):
    return c.post(reverse(f"reading-api:{name}", args=[read.public_id]), json.dumps(body),
                  content_type="application/json")


def _trial(code: str, n_cases: int) -> dict:
    t = make_trial(code=code)
    cases = add_cases(t, n_cases)
    with_images_and_drafts(t, cases, size=64)
    t["reader"] = reader_in(t, "ai_assisted")
    return t


@pytest.mark.django_db(transaction=True)
def test_heartbeat_and_autosave_take_at_most_three_queries():
    t = _trial("QC1", 2)
    m = t["reader"]
    read = services.open_read(m.user, reads_of(m).first())
    with CaptureQueriesContext(connection) as q:
        services.heartbeat(m.user, read.public_id, 3)
    # one UPDATE that checks and credits (services._HEARTBEAT_SQL); pghistory's set_config rides in the statement
    assert len(_data(q.captured_queries)) == 1, [x["sql"] for x in q.captured_queries]
    with CaptureQueriesContext(connection) as q:
        services.autosave(m.user, read.public_id, {"findings_text": "Clear.", "finding_marks": {}}, seconds=2)
    assert len(_data(q.captured_queries)) == 2, [x["sql"] for x in q.captured_queries]

    c = Client()
    c.force_login(m.user)
    for name, body in (("heartbeat", {"seconds": 3}), ("autosave", {"findings_text": "Clearer.", "seconds": 1})):
        with CaptureQueriesContext(connection) as q:
            assert _post(c, name, read, body).status_code == 200
        own = _own(q.captured_queries)
        # the request's own queries: the heartbeat's UPDATE; the autosave's locked read (with case, trial,
        # reader) and its update; plus the session and user lookups of every authenticated request
        n = 1 if name == "heartbeat" else 2
        assert len(own) == n and len(_data(q.captured_queries)) == n + 2, [x["sql"] for x in q.captured_queries]
    read.refresh_from_db()
    assert read.findings_text == "Clearer." and read.active_seconds > 0


def _request_counts(t: dict) -> dict[str, int]:
    m = t["reader"]
    code = t["trial"].code
    c = Client()
    c.force_login(m.user)
    read = reads_of(m).first()
    image = read.case.images.first()
    requests = [
        ("worklist page", lambda: c.get(reverse("reading:worklist", args=[code]))),
        ("worklist api", lambda: c.get(reverse("reading-api:worklist", args=[code]))),
        ("next", lambda: c.get(reverse("reading:next", args=[code]))),
        ("open api", lambda: _post(c, "open", read, {})),
        ("read page", lambda: c.get(reverse("reading:read", args=[code, read.public_id]))),
        ("detail api", lambda: c.get(reverse("reading-api:detail", args=[read.public_id]))),
        ("image meta", lambda: c.get(reverse("imaging:image-meta", args=[image.public_id]))),
        ("heartbeat", lambda: _post(c, "heartbeat", read, {"seconds": 2})),
        ("autosave", lambda: _post(c, "autosave", read, {"findings_text": "Clear.", "seconds": 1})),
        ("submit api", lambda: _post(c, "submit", read, {
            "findings_text": "Clear lungs.", "impression_text": "Normal.",
            "finding_marks": {f: {"present": False, "confidence": 4} for f in t["trial"].finding_codes}})),
        ("worklist after submit", lambda: c.get(reverse("reading-api:worklist", args=[code]))),
    ]
    counts = {}
    for name, call in requests:
        with CaptureQueriesContext(connection) as q:
            r = call()
        assert r.status_code in (200, 302), (name, r.status_code)
        counts[name] = len(_data(q.captured_queries))
    return counts


@pytest.mark.django_db(transaction=True)
def test_no_reader_request_grows_with_the_number_of_cases():
    small, large = _request_counts(_trial("QS", 2)), _request_counts(_trial("QL", 20))
    assert small == large, {k: (small[k], large[k]) for k in small if small[k] != large[k]}
    # 2 of them the session and user lookups
    assert small["heartbeat"] + 1 == small["autosave"] == 4


def _redis_sessions(redis_url: str):
    """The production settings with CACHE_URL: Redis cache (this run's own key prefix), cached_db sessions."""
    return override_settings(
        CACHES={"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": redis_url,
                            "KEY_PREFIX": f"test-query-counts-{uuid.uuid4().hex}"}},
        SESSION_ENGINE="django.contrib.sessions.backends.cached_db")


@pytest.mark.django_db(transaction=True)
def test_with_redis_sessions_heartbeat_and_autosave_take_three_queries_and_none_grows(redis_url):
    with _redis_sessions(redis_url):
        t = _trial("QR1", 2)
        m = t["reader"]
        read = services.open_read(m.user, reads_of(m).first())
        c = Client()
        c.force_login(m.user)  # the session is written to the database and to Redis
        assert cache.get(f"django.contrib.sessions.cached_db{c.session.session_key}") is not None
        for name, body in (("heartbeat", {"seconds": 3}), ("autosave", {"findings_text": "Clearer.", "seconds": 1})):
            with CaptureQueriesContext(connection) as q:
                assert _post(c, name, read, body).status_code == 200
            sqls = _data(q.captured_queries)
            # heartbeat: its UPDATE and the user; autosave: the locked read (with case, trial, reader), its update,
            # the user; no session query
            assert len(sqls) == (2 if name == "heartbeat" else 3), sqls
            assert not any('"django_session"' in s for s in sqls), sqls
        read.refresh_from_db()
        assert read.findings_text == "Clearer." and read.active_seconds > 0
        small, large = _request_counts(_trial("QRS", 2)), _request_counts(_trial("QRL", 20))
        assert small == large, {k: (small[k], large[k]) for k in small if small[k] != large[k]}
        assert small["heartbeat"] + 1 == small["autosave"] == 3


@pytest.mark.django_db(transaction=True)
def test_with_redis_sessions_a_logout_ends_the_session_everywhere(redis_url):
    """cached_db: the session is deleted from Redis and the database at logout; the old cookie is refused."""
    with _redis_sessions(redis_url):
        t = _trial("QR2", 2)
        m = t["reader"]
        read = services.open_read(m.user, reads_of(m).first())
        c = Client()
        c.force_login(m.user)
        cookie = c.cookies["sessionid"].value
        assert _post(c, "heartbeat", read, {"seconds": 1}).status_code == 200
        c.logout()
        assert cache.get(f"django.contrib.sessions.cached_db{cookie}") is None
        stale = Client()
        stale.cookies["sessionid"] = cookie
        assert _post(stale, "heartbeat", read, {"seconds": 1}).status_code in (401, 403)
