"""Concurrency as an insider would cause it (ninth session, helper attack), on PostgreSQL with real threads, each
with its own connection (row locks mean nothing on SQLite): two tabs submitting one read at once, a submit racing
the coordinator's exclusion of the case, a submit in flight while the coordinator locks the trial.

An interleaving is forced, not hoped for: the test holds a row the submit will need (its author's audit-chain head,
which the submit takes after it has checked the trial's status), so the submit is parked at the worst moment
while the other action runs; then the row is let go."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import close_old_connections, connection, connections, transaction

from core.errors import TrialLocked
from rating import services as rating_services
from rating.models import Rating
from reading import services as reading_services
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.factories.reading import reader_in, reads_of
from trial import services as trial_services
from trial.audit import chain_name
from trial.models import AuditEntry, AuditHead, Case, Trial

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_drafts_task(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def _report(trial: Trial, text: str) -> dict:
    return {"findings_text": text, "impression_text": "Normal chest.",
            "finding_marks": {c: {"present": False, "confidence": 4} for c in trial.finding_codes}}


class Worker(threading.Thread):
    """Runs fn in a thread with its own database connection; keeps its result or exception."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self):
        try:
            self.result = self.fn()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            self.error = exc
        finally:
            connections.close_all()


def _waiting_on_a_lock(n: int = 1, timeout: float = 10.0) -> None:
    """Until n other backends of this database wait on a row lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            if cur.fetchone()[0] >= n:
                return
            time.sleep(0.02)
    raise AssertionError("the other transaction never waited on the held row")


def _hold_chain(trial: Trial, user) -> tuple[threading.Event, threading.Thread]:
    """Hold the user's audit-chain head of the trial (FOR UPDATE) in another connection until the event is set."""
    AuditHead.objects.get(chain=chain_name(trial, user))  # it exists (the author opened their work)
    release, held = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                AuditHead.objects.select_for_update().get(chain=chain_name(trial, user))
                held.set()
                release.wait(20)
        finally:
            close_old_connections()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert held.wait(10)
    return release, t


def _submit_racing_the_lock(t: dict, author, submit) -> tuple[Worker, bool, Trial]:
    """``submit`` parked on its author's audit chain (held from another connection) while the coordinator locks the
    trial; then the chain is released. Returns the submit's worker, whether the lock finished first, the trial."""
    release, holder = _hold_chain(t["trial"], author)
    sub = Worker(submit)
    sub.start()
    _waiting_on_a_lock()
    locker = Worker(lambda: trial_services.lock_trial(t["coordinator"], Trial.objects.get(pk=t["trial"].pk),
                                                      reason="database lock"))
    locker.start()
    locker.join(3)  # it either finishes (the submit does not hold it up) or waits for the submit
    locked_first = not locker.is_alive()
    release.set()
    holder.join(10)
    sub.join(20)
    locker.join(20)
    assert not sub.is_alive() and not locker.is_alive()
    assert locker.error is None, locker.error
    return sub, locked_first, Trial.objects.get(pk=t["trial"].pk)


def test_two_tabs_submitting_one_read_at_once_store_it_once():
    t = rating_trial(code="CC1", cases=2)
    me = reader_in(t, "unassisted")
    read = reads_of(me)[0]
    reading_services.open_read(me.user, read.public_id)
    start = threading.Barrier(2)

    def submit(text):
        def go():
            start.wait(5)
            return reading_services.submit_read(me.user, read.public_id, _report(t["trial"], text), seconds=3)
        return go

    tabs = [Worker(submit("Tab one.")), Worker(submit("Tab two."))]
    for w in tabs:
        w.start()
    for w in tabs:
        w.join(20)
    assert [w.error for w in tabs] == [None, None]
    created = sorted(w.result[1] for w in tabs)
    assert created == [False, True]  # one stored it, the other was told it is already stored
    read.refresh_from_db()
    winner = next(w.result[0] for w in tabs if w.result[1])
    assert read.is_submitted and read.findings_text == winner.findings_text
    assert AuditEntry.objects.filter(action="read:submit", object_id=str(read.pk)).count() == 1


def test_a_submit_racing_the_exclusion_of_its_case_is_all_or_nothing():
    t = rating_trial(code="CC2", cases=2)
    me = reader_in(t, "unassisted")
    read = reads_of(me)[0]
    reading_services.open_read(me.user, read.public_id)
    start = threading.Barrier(2)

    def submit():
        start.wait(5)
        return reading_services.submit_read(me.user, read.public_id, _report(t["trial"], "Raced."), seconds=3)

    def exclude():
        start.wait(5)
        return trial_services.exclude_case(t["coordinator"], Case.objects.get(pk=read.case_id), "withdrawn consent")

    workers = [Worker(submit), Worker(exclude)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    assert workers[1].error is None
    read.refresh_from_db()
    case = Case.objects.get(pk=read.case_id)
    assert case.status == Case.Status.EXCLUDED
    if workers[0].error is None:  # stored, whole: submitted, audited once
        assert read.is_submitted and read.findings_text == "Raced."
        assert AuditEntry.objects.filter(action="read:submit", object_id=str(read.pk)).count() == 1
    else:  # refused with a clear error, nothing written
        assert getattr(workers[0].error, "message", "")
        assert not read.is_submitted and read.findings_text != "Raced."
        assert not AuditEntry.objects.filter(action="read:submit", object_id=str(read.pk)).exists()


def test_a_rating_submitted_while_the_trial_locks_is_refused_or_before_the_lock():
    """The expert's submit has checked that the trial is not locked and waits (on its audit chain); the coordinator
    locks the trial meanwhile; the submit goes on. A locked trial is read-only for everyone: the rating must not
    be stored after locked_at, and the expert must be told."""
    t = rating_trial(code="CC3", cases=2, experts=2, panel=1)
    for case in t["cases"]:
        complete_case(case)
    trial_services.advance_status(t["coordinator"], t["trial"], Trial.Status.RATING, reason="test")
    task = Rating.objects.filter(expert=t["experts"][0]).first()
    expert = t["experts"][0].user
    rating_services.open_rating(expert, task)
    sub, locked_first, trial = _submit_racing_the_lock(
        t, expert, lambda: rating_services.submit_rating(expert, Rating.objects.get(pk=task.pk), GOOD))
    task.refresh_from_db()
    assert trial.status == Trial.Status.LOCKED
    # Before: the lock finished while the submit was parked, then the rating was stored in the locked trial, its
    # submitted_at (taken before the park) 40 ms before locked_at. Now the lock waits for the submit in flight.
    if locked_first:
        assert isinstance(sub.error, TrialLocked), sub.error
        assert task.submitted_at is None and task.status != Rating.Status.DONE
    else:
        assert sub.error is None, sub.error
        assert task.status == Rating.Status.DONE and task.submitted_at <= trial.locked_at
        lock_entry = AuditEntry.objects.get(trial=trial, action="status:locked")
        assert lock_entry.at >= task.submitted_at


def test_a_read_submitted_while_the_trial_locks_is_refused_or_before_the_lock():
    t = rating_trial(code="CC4", cases=2)
    me = reader_in(t, "unassisted")
    read = reads_of(me)[0]
    reading_services.open_read(me.user, read.public_id)
    sub, locked_first, trial = _submit_racing_the_lock(
        t, me.user, lambda: reading_services.submit_read(me.user, read.public_id, _report(t["trial"], "Late."),
                                                         seconds=3))
    read.refresh_from_db()
    assert trial.status == Trial.Status.LOCKED
    if locked_first:
        assert isinstance(sub.error, TrialLocked), sub.error
        assert read.submitted_at is None
    else:
        assert sub.error is None, sub.error
        assert read.is_submitted and read.submitted_at <= trial.locked_at
