"""Fault: PostgreSQL restarts during a burst of submits (issue 8).

A real gunicorn server on the test database; reader clients submit their reads through the REST API and retry on
errors (5xx, dropped connections) until they get a 2xx, the way the reading page does. Mid-burst the PostgreSQL
cluster is restarted (`pg_ctlcluster --skip-systemctl-redirect <version> <name> restart`). Then: every submit
acknowledged is stored exactly once with the text sent, no read is submitted twice (one `read:submit` audit entry
each), every client that saw an error retried to success, and the audit chain is intact. The server side reconnects
by itself (CONN_HEALTH_CHECKS with persistent connections).

The restart drops every connection to the server, including other test runs' on a shared PostgreSQL. Set
RELIABILITY_PG_FAULT=terminate to terminate only this test database's connections instead (same checks; also the
fallback when no local Debian cluster serves the test database, e.g. PostgreSQL in another container).
"""
from __future__ import annotations

import os
import threading
import time
import warnings

import httpx
import pytest
from django.db import connection, connections
from django.urls import reverse
from rest_framework.authtoken.models import Token

import inference.services as inference_services
from inference.selectors import arm_model_version
from reading.models import Read
from tests.factories.reading import ready_draft
from tests.factories.trial import add_cases, make_trial
from tests.reliability.helpers import GunicornServer, ensure_postgres_running, pg_cluster, pg_ctl
from trial.audit import verify_all
from trial.models import AuditEntry

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CASES = 20  # x 2 arms = 40 reads, 5 per reader
CLIENT_DEADLINE_S = 90


def _report(codes, public_id: str) -> dict:
    return {
        "findings_text": f"Restart burst report for {public_id}.",
        "impression_text": "No acute disease.",
        "finding_marks": {c: {"present": False, "confidence": 3} for c in codes},
        "seconds": 1,
    }


class Client(threading.Thread):
    """One reader submitting each of their reads, retrying until a 2xx (or the deadline)."""

    def __init__(self, base: str, token: str, reads: list[str], codes: list[str], started: threading.Event):
        super().__init__(daemon=True)
        self.base, self.token, self.reads, self.codes, self.started = base, token, reads, codes, started
        self.acked: list[tuple[str, str, bool]] = []
        self.errors: list[str] = []
        self.gave_up: list[str] = []

    def run(self) -> None:
        self.started.wait(30)
        deadline = time.monotonic() + CLIENT_DEADLINE_S
        with httpx.Client(base_url=self.base, headers={"Authorization": f"Token {self.token}"}, timeout=15) as c:
            for pid in self.reads:
                body = _report(self.codes, pid)
                delay = 0.1
                while True:
                    try:
                        r = c.post(reverse("reading-api:submit", args=[pid]), json=body)
                        if 200 <= r.status_code < 300:
                            self.acked.append((pid, body["findings_text"], bool(r.json()["already_submitted"])))
                            break
                        self.errors.append(f"{pid}: HTTP {r.status_code}")
                        if r.status_code < 500:  # a 4xx is a bug in the test or the app, not the fault: stop
                            self.gave_up.append(pid)
                            break
                    except httpx.HTTPError as exc:
                        self.errors.append(f"{pid}: {type(exc).__name__}")
                    if time.monotonic() > deadline:
                        self.gave_up.append(pid)
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                time.sleep(0.05)  # a burst, not a flood: leave the restart room to land mid-burst


def _fault(mode: str, cluster, dbname: str) -> str:
    if mode == "restart":
        r = pg_ctl("restart", cluster)
        assert r.returncode == 0, r.stderr
        return f"restarted PostgreSQL {cluster[0]}/{cluster[1]}"
    # terminate: kill this database's backends (and any that reconnect) for a second and a half
    import psycopg

    db = connection.settings_dict
    end = time.monotonic() + 1.5
    killed = 0
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
                         dbname="postgres", autocommit=True) as admin:
        while time.monotonic() < end:
            killed += len(admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [dbname]).fetchall())
            time.sleep(0.05)
    return f"terminated {killed} backends of {dbname}"


def test_acknowledged_submits_survive_a_postgresql_restart(tmp_path, monkeypatch):
    assert connection.vendor == "postgresql"
    mode = os.environ.get("RELIABILITY_PG_FAULT", "restart")
    cluster = pg_cluster()
    if mode == "restart" and cluster is None:
        warnings.warn("No local PostgreSQL cluster to restart: terminating the test database's connections instead",
                      stacklevel=1)
        mode = "terminate"

    monkeypatch.setattr(inference_services, "send_draft_task", lambda draft_id: False)  # drafts made ready below
    t = make_trial(code="PGR", centers=2, readers_per_arm_per_center=2)  # 8 readers
    cases = add_cases(t, CASES)
    mv = arm_model_version(t["arms"]["ai_assisted"])
    for c in cases:
        ready_draft(c, mv)
    codes = t["trial"].finding_codes
    started = threading.Event()
    clients = []
    for m in t["readers"]:
        pids = list(Read.objects.filter(reader=m).order_by("order_key").values_list("public_id", flat=True))
        clients.append(Client("", Token.objects.create(user=m.user).key, pids, codes, started))
    total = sum(len(c.reads) for c in clients)
    assert total == 2 * CASES
    dbname = connection.settings_dict["NAME"]
    connections.close_all()  # the test's own connection would be dropped by the fault too

    server = GunicornServer(tmp_path / "gunicorn.log")
    try:
        for c in clients:
            c.base = server.url
            c.start()
        started.set()
        # Let about a fifth of the submits through, then fault.
        end = time.monotonic() + 60
        while sum(len(c.acked) for c in clients) < total // 5 and time.monotonic() < end:
            time.sleep(0.02)
        acked_before = sum(len(c.acked) for c in clients)
        what = _fault(mode, cluster, dbname)
        for c in clients:
            c.join(CLIENT_DEADLINE_S + 30)
        assert not any(c.is_alive() for c in clients), "a client hung"
    finally:
        ensure_postgres_running(cluster)
        server.stop()
        connections.close_all()

    acked = [a for c in clients for a in c.acked]
    errors = [e for c in clients for e in c.errors]
    gave_up = [p for c in clients for p in c.gave_up]
    summary = (f"{what}; acknowledged before the fault {acked_before}/{total}, after {len(acked)}; "
               f"{len(errors)} errors seen by clients (retried): {errors[:5]}")
    print(summary)
    assert acked_before < total, "the fault landed after the burst: " + summary
    assert not gave_up, f"clients gave up on {gave_up}: {summary}"
    # Every read acknowledged (the clients retried to success), once each by the client's count.
    assert sorted(p for p, _, _ in acked) == sorted(p for c in clients for p in c.reads)
    # Stored exactly once, with the text that was sent.
    rows = {r.public_id: r for r in Read.objects.filter(public_id__in=[p for p, _, _ in acked])}
    for pid, text, _already in acked:
        assert rows[pid].submitted_at is not None and rows[pid].status == Read.Status.DONE, pid
        assert rows[pid].findings_text == text, pid
    per_read = {}
    for e in AuditEntry.objects.filter(trial=t["trial"], action="read:submit"):
        per_read[e.object_id] = per_read.get(e.object_id, 0) + 1
    assert len(per_read) == total and set(per_read.values()) == {1}, "a read was submitted twice (or not at all)"
    # A retry of a submit whose commit had landed is answered already_submitted (idempotent), never a second copy.
    created = [p for p, _, already in acked if not already]
    assert len(created) == len(set(created))
    n, broken = verify_all()
    assert broken is None, str(broken)
    if mode == "restart":
        assert errors, "the restart caused no client error: the test did not exercise the fault: " + summary
