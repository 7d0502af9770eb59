"""Drafts through a real Celery worker on Redis, with the real Janus loading path on a tiny random model."""
from __future__ import annotations

import os
import signal
import time
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from config.celery import app
from inference.backends.prompts import DEEPSEEK_SYSTEM_PROMPT, PUBLISHED_INSTRUCTION
from inference.models import ArmModelVersion, Draft, ModelVersion
from inference.tiny import BOS, TINY_VISION_HEADS, build_tiny_deepseek_janus, build_tiny_janus
from tests.factories.imaging import add_image
from tests.factories.trial import make_trial
from tests.processes import CeleryWorker, wait_until
from trial import services
from trial.models import Trial

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]
ROOT = Path(settings.BASE_DIR)


@pytest.fixture(scope="module")
def tiny_janus(tmp_path_factory) -> Path:
    return build_tiny_janus(tmp_path_factory.mktemp("janus") / "tiny-janus")


@pytest.fixture
def broker(redis_url, settings):
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    old = {k: app.conf.get(k) for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    settings.CELERY_BROKER_URL = redis_url
    _reset_pool()
    yield r
    app.conf.update(**old)
    _reset_pool()
    r.flushdb()


def _reset_pool() -> None:
    # Drop (not close) the cached pools: a closed pool may still be referenced by the producer pool.
    app._pool = None  # recreated lazily for the current broker_url
    app.amqp._producer_pool = None


def _janus_trial(weights: Path, code: str, options: dict | None = None) -> tuple[dict, ModelVersion]:
    mv = ModelVersion.objects.create(
        name=f"tiny-janus-{code}", backend=ModelVersion.Backend.JANUS, weights_path=str(weights),
        generation_params={"max_new_tokens": 24, "options": options or {}},
    )
    t = make_trial(code=code, status=Trial.Status.READING)
    arm = t["arms"]["ai_assisted"]
    ArmModelVersion.objects.filter(arm=arm).update(model_version=mv)
    return t, mv


def _enrol_with_image(t: dict, code: str):
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=code)
    add_image(case)
    return services.enrol_case(t["coordinator"], case)


def test_worker_makes_a_janus_draft(tiny_janus, broker, redis_url, tmp_path, settings):
    assert connection.vendor == "postgresql"
    t, mv = _janus_trial(tiny_janus, "WRK")
    worker = CeleryWorker(redis_url, tmp_path / "worker.log")
    try:
        case = _enrol_with_image(t, "W1")
        draft = Draft.objects.get(case=case, model_version=mv)
        wait_until(lambda: Draft.objects.filter(pk=draft.pk, status__in=["ready", "failed"]).exists(), 120,
                 "the draft", worker.log)
        draft.refresh_from_db()
        assert draft.status == "ready", draft.error
        assert (draft.findings_text + draft.impression_text).strip()
        assert draft.probabilities == {}  # no expert model configured: none, rather than made-up ones
        assert draft.generate_s > 0 and draft.queue_wait_s is not None and draft.worker_host
        assert draft.prompt.startswith(f"{BOS}{DEEPSEEK_SYSTEM_PROMPT}\n\nUser: ")  # the published prompt
        assert draft.prompt.endswith(f"\n{PUBLISHED_INSTRUCTION}\n\nAssistant:")
        assert draft.attempts == 1
    finally:
        worker.stop()


def test_worker_drafts_from_converted_published_weights(broker, redis_url, tmp_path, settings):
    # The published weights are in DeepSeek's format: converted with the management command, then served.
    published = build_tiny_deepseek_janus(tmp_path / "Janus-Pro-CXR-tiny")
    converted = tmp_path / "Janus-Pro-CXR-tiny-hf"
    call_command("convert_janus", str(published), str(converted), "--vision-heads", str(TINY_VISION_HEADS),
                 stdout=StringIO())
    t, mv = _janus_trial(converted, "PUB")
    worker = CeleryWorker(redis_url, tmp_path / "worker.log")
    try:
        case = _enrol_with_image(t, "P1")
        draft = Draft.objects.get(case=case, model_version=mv)
        wait_until(lambda: Draft.objects.filter(pk=draft.pk, status__in=["ready", "failed"]).exists(), 120,
                   "the draft", worker.log)
        draft.refresh_from_db()
        assert draft.status == "ready", draft.error
        assert draft.parameters["weights_dir"] == str(converted)
        assert draft.parameters["prompt_template"] == "janus-pro-cxr"
        assert draft.prompt.endswith(f"\n{PUBLISHED_INSTRUCTION}\n\nAssistant:")
    finally:
        worker.stop()


def test_killed_worker_draft_is_redone_once(tiny_janus, broker, redis_url, tmp_path, settings):
    # The first attempt is made to run for minutes, so the kill surely lands mid-generation; before the kill the
    # model version is set back to a short generation, so the redelivered task finishes quickly.
    t, mv = _janus_trial(tiny_janus, "KIL")
    mv.generation_params = {"max_new_tokens": 100_000, "options": {"min_new_tokens": 100_000}}
    mv.save(update_fields=["generation_params"])
    log = tmp_path / "worker.log"
    worker = CeleryWorker(redis_url, log)
    try:
        case = _enrol_with_image(t, "K1")
        draft = Draft.objects.get(case=case, model_version=mv)
        wait_until(lambda: Draft.objects.filter(pk=draft.pk, status="running").exists(), 120, "the task to start", log)
        time.sleep(2.0)  # well into generate()
        # The running attempt keeps its long settings; the redelivered one will read these short ones.
        mv.generation_params = {"max_new_tokens": 24}
        mv.save(update_fields=["generation_params"])
        children = wait_until(worker.child_pids, 10, "the pool process")
        for pid in children:
            os.kill(pid, signal.SIGKILL)  # the process running the task dies mid-generation
        assert Draft.objects.get(pk=draft.pk).status == "running"  # killed before it could finish
        # reject_on_worker_lost + acks_late: the message goes back to the queue and the worker's replacement
        # process (a fresh process that loads the model again) redoes the draft.
        wait_until(lambda: Draft.objects.filter(pk=draft.pk, status__in=["ready", "failed"]).exists(), 240,
                 "the redone draft", log)
        draft.refresh_from_db()
        assert draft.status == "ready", draft.error
        assert draft.attempts >= 2  # the killed attempt and the one that finished
        assert Draft.objects.filter(case=case, model_version=mv).count() == 1
        assert not set(children) & set(worker.child_pids())  # finished by a new process
    finally:
        worker.stop()


def test_corrupt_weights_fail_clearly_and_do_not_block_the_queue(tiny_janus, broker, redis_url, tmp_path, settings):
    bad = tmp_path / "corrupt-janus"
    bad.mkdir()
    for f in tiny_janus.iterdir():
        if f.is_file():
            data = f.read_bytes()
            (bad / f.name).write_bytes(data[: len(data) // 3] if f.suffix == ".safetensors" else data)
    t, mv = _janus_trial(bad, "BAD")
    worker = CeleryWorker(redis_url, tmp_path / "worker.log")
    try:
        c1 = _enrol_with_image(t, "B1")
        c2 = _enrol_with_image(t, "B2")
        for case in (c1, c2):
            wait_until(lambda case=case: Draft.objects.filter(case=case, status__in=["ready", "failed"]).exists(),
                     120, "a failed draft", worker.log)
        for case in (c1, c2):
            d = Draft.objects.get(case=case, model_version=mv)
            assert d.status == "failed"
            assert str(bad) in d.error and "load" in d.error.lower()
        assert broker.llen("gpu") == 0
    finally:
        worker.stop()


def test_worker_batches_drafts_queued_together(tiny_janus, broker, redis_url, tmp_path, settings):
    # Three cases enrolled while no worker runs: their tasks wait in Redis. The first task the worker takes
    # generates all three in one padded batch; the other two tasks then find their drafts ready.
    t, mv = _janus_trial(tiny_janus, "BAT")
    cases = [_enrol_with_image(t, f"B{i}") for i in range(3)]
    drafts = list(Draft.objects.filter(case__in=cases, model_version=mv))
    assert {d.status for d in drafts} == {"queued"}
    worker = CeleryWorker(redis_url, tmp_path / "worker.log")
    try:
        wait_until(lambda: Draft.objects.filter(pk__in=[d.pk for d in drafts], status="ready").count() == 3, 120,
                   "the batch", worker.log)
        for d in drafts:
            d.refresh_from_db()
            assert d.parameters["batch_size"] == 3 and d.attempts == 1
        time.sleep(1.0)  # the two companion tasks ran as no-ops
        assert all(Draft.objects.get(pk=d.pk).attempts == 1 for d in drafts)
    finally:
        worker.stop()
