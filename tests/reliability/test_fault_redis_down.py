"""Fault: the broker (Redis) is down when a case is enrolled (issue 8).

Decision: enrolment does not depend on the broker. The enrolment transaction commits (case enrolled, reads made,
the Draft row 'queued'); sending the task happens after commit, fails fast (one connection attempt, no retry:
inference.tasks.SEND_TRANSPORT_OPTIONS) and is logged; the draft waits in 'queued' and the AI-arm read stays
off the worklist. When the broker is back, `manage.py requeue_drafts` (cron, or by hand) sends every draft still
queued; the task is idempotent, so a draft sent twice is made once.

Tested for real: a throwaway redis-server on its own port (never the shared 6379), stopped and started again, and
a real Celery worker with the retrieval baseline and a case image.
"""
from __future__ import annotations

import logging
import time
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.core.management import call_command

from inference.models import Draft, ModelVersion
from inference.selectors import arm_model_version
from reading.models import Read
from reading.selectors import worklist_for
from tests.factories.imaging import add_image
from tests.factories.trial import make_trial
from tests.reliability.helpers import (
    CeleryWorker,
    ThrowawayRedis,
    point_celery_at,
    restore_celery,
    wait_until,
)
from trial import services

pytestmark = [pytest.mark.slow, pytest.mark.celery, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def throwaway_redis(tmp_path):
    r = ThrowawayRedis(tmp_path, port=6390)
    r.start()
    try:
        yield r
    finally:
        if r.proc is not None:
            r.stop()


@pytest.fixture
def celery_on(throwaway_redis, settings):
    old = point_celery_at(throwaway_redis.url, task_always_eager=False)
    settings.CELERY_BROKER_URL = throwaway_redis.url
    try:
        yield throwaway_redis
    finally:
        restore_celery(old)


def test_enrolment_with_redis_down_queues_the_draft_and_requeue_sends_it(celery_on, tmp_path, settings, caplog):
    broker = celery_on
    t = make_trial(code="RDS", centers=1, readers_per_arm_per_center=1)
    mv = arm_model_version(t["arms"]["ai_assisted"])
    assert mv.backend == ModelVersion.Backend.RETRIEVAL
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="R1")
    add_image(case)

    broker.stop()
    caplog.set_level(logging.WARNING, logger="inference.services")
    t0 = time.perf_counter()
    case = services.enrol_case(t["coordinator"], case)  # must not raise, must not hang
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"enrolment took {elapsed:.1f} s with the broker down (send must fail fast)"
    case.refresh_from_db()
    assert case.enrolled_at is not None and case.status == "enrolled"
    draft = Draft.objects.get(case=case, model_version=mv)
    assert draft.status == Draft.Status.QUEUED
    assert Read.objects.filter(case=case).count() == 2
    assert any("Could not queue draft" in r.getMessage() for r in caplog.records)
    ai_read = Read.objects.get(case=case, arm=t["arms"]["ai_assisted"])
    assert ai_read not in worklist_for(ai_read.reader.user, t["trial"])  # waits for its draft

    # requeue_drafts with the broker still down: fails fast too, and leaves the draft queued
    t0 = time.perf_counter()
    out = StringIO()
    call_command("requeue_drafts", "--older-than", "0", stdout=out)
    assert "Re-sent 0" in out.getvalue() and time.perf_counter() - t0 < 3.0

    broker.start()  # an empty Redis: the message sent at enrolment never reached it
    assert redis.Redis.from_url(broker.url).llen("gpu") == 0
    out = StringIO()
    call_command("requeue_drafts", "--older-than", "0", stdout=out)
    assert "Re-sent 1" in out.getvalue(), out.getvalue()
    assert redis.Redis.from_url(broker.url).llen("gpu") == 1

    worker = CeleryWorker(broker.url, tmp_path / "worker.log")
    try:
        wait_until(lambda: Draft.objects.filter(pk=draft.pk, status__in=["ready", "failed"]).exists(), 120,
                   "the requeued draft", Path(worker.log))
    finally:
        worker.stop()
    draft.refresh_from_db()
    assert draft.status == Draft.Status.READY, draft.error
    assert (draft.findings_text + draft.impression_text).strip()
    assert Draft.objects.filter(case=case, model_version=mv).count() == 1
    assert ai_read in worklist_for(ai_read.reader.user, t["trial"])  # the AI-arm read is now on the worklist
