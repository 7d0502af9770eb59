"""Serving rules (inference/serving.py): time limits from max_new_tokens and the measured speed, the stale sweep on
the same limit, out-of-memory halving, per-draft provenance. Drafts run in-process here (eager Celery, real
PostgreSQL, the tiny random Janus model); tests/inference/test_worker.py runs them through a real worker."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import torch
from django.core.management import call_command
from django.utils import timezone

from inference import serving
from inference.models import ArmModelVersion, Draft, ModelVersion
from inference.runner import run_draft
from inference.serving import OutOfMemoryFailure, generate_halving_on_oom, time_limit_for
from tests.factories.imaging import add_image
from tests.factories.trial import make_trial
from trial import services
from trial.models import Trial


# time limits (pure) ---------------------------------------------------------------------------------------------
def test_time_limit_scales_with_tokens_and_speed_between_floor_and_cap():
    slow = time_limit_for(max_new_tokens=512, seconds_per_token=0.5, load_s=30.0, floor_s=120, cap_s=3000)
    assert slow.soft_s == 30.0 + 3 * 512 * 0.5 == 798.0 and slow.hard_s == 858.0
    half = time_limit_for(max_new_tokens=256, seconds_per_token=0.5, load_s=30.0, floor_s=120, cap_s=3000)
    assert half.soft_s == 30.0 + 3 * 256 * 0.5  # half the tokens, (almost) half the limit
    fast = time_limit_for(max_new_tokens=512, seconds_per_token=0.01, floor_s=120, cap_s=3000)
    assert fast.soft_s == 120 and "floor" in fast.basis  # 15 s measured: raised to the floor
    cpu = time_limit_for(max_new_tokens=512, seconds_per_token=3.0, floor_s=120, cap_s=3000)
    assert cpu.soft_s == 3000 and "cap" in cpu.basis
    unknown = time_limit_for(max_new_tokens=512, seconds_per_token=None, floor_s=120, cap_s=3000)
    assert unknown.soft_s == 3000 and unknown.seconds_per_token is None and "not measured" in unknown.basis


# out of memory (pure; a real torch.OutOfMemoryError from a tiny callable: no real OOM on a CPU machine) ---------
class FitsUpTo:
    """A generate callable that runs out of memory above ``limit`` requests, as a GPU would."""

    def __init__(self, limit: int):
        self.limit, self.calls = limit, []

    def __call__(self, requests: list) -> list:
        self.calls.append(len(requests))
        if len(requests) > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate for {len(requests)} sequences")
        return [f"report {r}" for r in requests]


def test_out_of_memory_halves_the_batch_once():
    gen, freed = FitsUpTo(4), []
    results, size = generate_halving_on_oom(gen, list(range(8)), free=lambda: freed.append(1))
    assert results == [f"report {i}" for i in range(8)]  # order kept
    assert gen.calls == [8, 4, 4] and size == 4 and freed == [1]


def test_out_of_memory_again_at_half_fails_with_the_reason():
    gen = FitsUpTo(1)
    with pytest.raises(OutOfMemoryFailure, match="batch size 8 and again at 4") as info:
        generate_halving_on_oom(gen, list(range(8)))
    assert gen.calls == [8, 4]  # retried once, not again
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
    with pytest.raises(OutOfMemoryFailure, match="one draft"):
        generate_halving_on_oom(FitsUpTo(0), [1])


def test_other_errors_are_not_treated_as_out_of_memory():
    def broken(requests):
        raise ValueError("bad image")

    with pytest.raises(ValueError, match="bad image"):
        generate_halving_on_oom(broken, [1, 2])
    assert serving.is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not serving.is_out_of_memory(RuntimeError("shape mismatch"))


# with the database ----------------------------------------------------------------------------------------------
@pytest.fixture
def janus(tiny_janus_path, db):
    t = make_trial(code="SRV", status=Trial.Status.READING)
    mv = ModelVersion.objects.create(
        name="tiny-janus-SRV", backend=ModelVersion.Backend.JANUS, weights_path=str(tiny_janus_path),
        generation_params={"max_new_tokens": 6, "device": "cpu", "options": {"batch_max": 1}},
    )
    arm = t["arms"]["ai_assisted"]
    ArmModelVersion.objects.filter(arm=arm).update(model_version=mv)
    return t, mv


def _draft(t, mv, code: str) -> Draft:
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=code)
    add_image(case)
    return Draft.objects.create(case=case, model_version=mv)  # queued, not sent


@pytest.mark.django_db(transaction=True)
def test_draft_records_its_speed_and_the_next_limit_follows_it(janus, settings):
    settings.INFERENCE_TIME_LIMIT_FLOOR_S, settings.INFERENCE_TIME_LIMIT_CAP_S = 0.001, 3000.0
    t, mv = janus
    assert serving.time_limit(mv).soft_s == 3000.0  # nothing measured yet: the cap
    first = _draft(t, mv, "S1")
    assert run_draft(None, first.pk) == "ready"
    first.refresh_from_db()
    record = first.parameters["serving"]
    assert record["time_limit"]["soft_s"] == 3000.0 and record["time_limit"]["max_new_tokens"] == 6
    spt = record["seconds_per_token"]
    assert spt > 0 and spt * first.parameters["new_tokens"] == pytest.approx(first.generate_s, rel=0.05)
    limit = serving.time_limit(mv)  # measured now: load + 3 x 6 x s/token
    assert limit.seconds_per_token == spt and limit.soft_s == pytest.approx(first.load_s + 18 * spt, abs=0.1)
    # more tokens, a longer limit (same measured speed)
    mv.generation_params = {**mv.generation_params, "max_new_tokens": 600}
    mv.save(update_fields=["generation_params"])
    assert serving.time_limit(mv).soft_s == pytest.approx(first.load_s + 1800 * spt, abs=0.1)


@pytest.mark.django_db(transaction=True)
def test_stale_sweep_uses_the_model_versions_time_limit(janus, settings):
    settings.INFERENCE_TIME_LIMIT_FLOOR_S, settings.INFERENCE_TIME_LIMIT_CAP_S = 100.0, 1000.0
    t, mv = janus
    d = _draft(t, mv, "S2")
    # unmeasured: limit 1000 s soft, 1060 s hard. Running 1000 s: left alone; 1100 s: re-queued and redone.
    Draft.objects.filter(pk=d.pk).update(status="running", started_at=timezone.now() - timedelta(seconds=1000))
    call_command("requeue_drafts", "--older-than", "86400", "--stale", stdout=StringIO())
    assert Draft.objects.get(pk=d.pk).status == "running"
    Draft.objects.filter(pk=d.pk).update(started_at=timezone.now() - timedelta(seconds=1100))
    call_command("requeue_drafts", "--older-than", "86400", "--stale", stdout=StringIO())
    d.refresh_from_db()
    assert d.status == "ready", d.error  # sent again (eager here) and made
    # measured now (the tiny model is fast): the floor, 100 s soft / 160 s hard
    assert serving.time_limit(mv).hard_s == 160.0
    d2 = _draft(t, mv, "S3")
    Draft.objects.filter(pk=d2.pk).update(status="running", started_at=timezone.now() - timedelta(seconds=200))
    from inference.tasks import sweep_stale_drafts

    assert sweep_stale_drafts.apply().get() == 1  # the beat task: the same rule
    d2.refresh_from_db()
    assert d2.status == "ready", d2.error


@pytest.mark.django_db(transaction=True)
def test_every_draft_records_hashes_and_versions(janus, tmp_path):
    import hashlib
    import json

    from inference.backends.classifier import build_small_cxr_net, save_checkpoint
    from trial.models import DEFAULT_FINDINGS

    t, mv = janus
    torch.manual_seed(0)
    codes = [f["code"] for f in DEFAULT_FINDINGS]
    expert = save_checkpoint(build_small_cxr_net(len(codes), width=4, depth=2), tmp_path / "expert.pt", codes,
                             image_size=32, width=4, depth=2)
    mv.generation_params = {**mv.generation_params, "classifier": {"weights_path": str(expert), "device": "cpu"}}
    mv.save(update_fields=["generation_params"])
    d = _draft(t, mv, "S4")
    assert run_draft(None, d.pk) == "ready", Draft.objects.get(pk=d.pk).error
    d.refresh_from_db()
    prov = d.parameters["provenance"]

    def sha(path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    weights = Path(mv.weights_path)
    assert d.parameters["weights_sha256"] == {"model.safetensors": sha(weights / "model.safetensors")}
    mv.refresh_from_db()  # the version is pinned to those weights by its first draft
    assert mv.weights_sha256 == hashlib.sha256(
        json.dumps(d.parameters["weights_sha256"], sort_keys=True).encode()).hexdigest()
    assert prov["tokenizer_sha256"]["tokenizer.json"] == sha(weights / "tokenizer.json")
    assert prov["processor_sha256"] and prov["template_sha256"]
    assert prov["expert_weights_sha256"] == {"expert.pt": sha(expert)}
    assert prov["torch"] == torch.__version__ and prov["transformers"]
    assert prov["code_version"].startswith(("git ", "cxr-trial "))


# through a real Celery worker (tests/inference/test_worker.py's set-up) -------------------------------------------
@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_worker_runs_each_draft_under_its_measured_limit(tiny_janus_path, redis_url, tmp_path, settings):
    import redis

    from config.celery import app
    from tests.processes import CeleryWorker, wait_until

    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    old = {k: app.conf.get(k) for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    settings.CELERY_BROKER_URL = redis_url
    app._pool, app.amqp._producer_pool = None, None
    settings.INFERENCE_TIME_LIMIT_FLOOR_S, settings.INFERENCE_TIME_LIMIT_CAP_S = 30.0, 3000.0
    t = make_trial(code="SWK", status=Trial.Status.READING)
    mv = ModelVersion.objects.create(
        name="tiny-janus-SWK", backend=ModelVersion.Backend.JANUS, weights_path=str(tiny_janus_path),
        generation_params={"max_new_tokens": 24, "options": {"batch_max": 1}},
    )
    arm = t["arms"]["ai_assisted"]
    ArmModelVersion.objects.filter(arm=arm).update(model_version=mv)
    worker = CeleryWorker(redis_url, tmp_path / "worker.log")

    def enrol(code: str) -> Draft:
        case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=code)
        add_image(case)
        services.enrol_case(t["coordinator"], case)
        draft = Draft.objects.get(case=case, model_version=mv)
        wait_until(lambda: Draft.objects.filter(pk=draft.pk, status__in=["ready", "failed"]).exists(), 180,
                   "the draft", worker.log)
        draft.refresh_from_db()
        return draft

    try:
        first = enrol("K1")
        assert first.status == "ready", first.error
        # sent before any speed was known: the cap, as Celery applied it in the worker
        assert first.parameters["serving"]["applied_time_limit"] == {"hard_s": 3060.0, "soft_s": 3000.0}
        assert first.parameters["serving"]["seconds_per_token"] > 0
        measured = serving.time_limit(mv)
        assert measured.seconds_per_token == first.parameters["serving"]["seconds_per_token"]
        second = enrol("K2")
        assert second.status == "ready", second.error
        assert second.parameters["serving"]["applied_time_limit"] == {"hard_s": measured.hard_s,
                                                                      "soft_s": measured.soft_s}
        # a draft that cannot finish within its limit is stopped by the worker at the soft limit, with the reason
        settings.INFERENCE_TIME_LIMIT_FLOOR_S, settings.INFERENCE_TIME_LIMIT_CAP_S = 3.0, 3.0
        mv.generation_params = {"max_new_tokens": 100_000, "options": {"batch_max": 1, "min_new_tokens": 100_000}}
        mv.save(update_fields=["generation_params"])
        third = enrol("K3")
        assert third.status == "failed" and "time limit" in third.error
        assert (third.finished_at - third.started_at).total_seconds() < 30
    finally:
        worker.stop()
        app.conf.update(**old)
        app._pool, app.amqp._producer_pool = None, None
        broker.flushdb()


@pytest.mark.django_db
def test_a_misconfigured_version_gets_the_cap_and_fails_in_its_task(janus, settings):
    settings.INFERENCE_TIME_LIMIT_CAP_S = 1000.0
    t, mv = janus
    mv.generation_params = {"max_new_tokens": "lots"}
    mv.save(update_fields=["generation_params"])
    assert serving.time_limit(mv).soft_s == 1000.0  # sending never breaks on a bad configuration
