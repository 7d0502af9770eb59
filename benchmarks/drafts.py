"""Drafts under load (issue 19.3): drafts/s through a real Celery gpu worker, with dynamic batching, for K concurrent
enrolments, and the batch sizes the worker reached.

    .venv/bin/python benchmarks/drafts.py [--concurrency 1 8 32] [--new-tokens 24] [--batch-max 32]
        [--window-ms 200] [--broker redis://127.0.0.1:6379/8] [--db cxr_drafts] [--json out.json]

Needs PostgreSQL (the worker is another process) and Redis (the broker), and the inference extra (torch,
transformers). The model is the tiny random Janus of :mod:`inference.tiny` (the real Janus loading and generate
path; a CPU machine cannot run the full-size model at any useful rate: benchmarks/inference.py measures that on a
GPU; ``--weights DIR`` runs a real local model folder instead, e.g. on a GPU machine). What it does:
1. Drops, creates and migrates its own database; a paired-by-case trial through the services (one center, four
   readers, the AI arm on a janus model version with ``options.batch_max`` / ``batch_window_ms``).
2. Imports ``1 + sum(K)`` synthetic chest DICOMs (imaging.services.import_file) as cases.
3. Starts ``celery -A config worker -Q gpu -c 1`` (one process: one GPU) and waits for one draft (model load).
4. For each K: enrols K cases at once (K threads calling trial.services.enrol_case, each sending its draft task)
   and times from the first enrolment until the K drafts are ready: drafts/s, the batch sizes the drafts record
   (``parameters.batch_size``) and the worker's CPU seconds.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import load as base  # noqa: E402  (recreate_database, app_env, manage, process CPU)


def _setup(db: str, broker: str, media: Path) -> dict:
    base.recreate_database(db)
    env = base.app_env(db)
    env.update(CELERY_BROKER_URL=broker, MEDIA_ROOT=str(media), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               LOG_LEVEL="WARNING")
    mig = base.manage(env, "migrate", "--noinput", "-v0")
    if mig.returncode != 0:
        raise SystemExit(f"migrate failed: {mig.stderr[-2000:]}")
    os.environ.update(env)
    os.environ["CONN_MAX_AGE"] = "0"
    import django

    django.setup()
    return env


def _trial(weights: Path, new_tokens: int, batch_max: int, window_ms: int):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from inference.models import ArmModelVersion, ModelVersion
    from trial import services

    User = get_user_model()
    coord = User.objects.create_user("drafts-coord", is_staff=True, password=None)
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    coord = User.objects.get(pk=coord.pk)
    trial = services.create_trial(coord, code="DRAFTS", title="Drafts benchmark")
    center = services.add_center(coord, trial, code="c1", name="Center 1")
    services.add_arm(coord, trial, code="unassisted", name="Standard care")
    ai = services.add_arm(coord, trial, code="ai_assisted", name="AI-assisted", is_ai=True)
    members = [services.add_member(coord, trial, user=User.objects.create_user(f"drafts-reader-{i}", password=None),
                                   role="reader", center=center, experience="senior") for i in range(4)]
    services.generate_allocation_list(coord, trial, seed="drafts-seed", block_sizes=[2, 4])
    trial = services.advance_status(coord, trial, "enrolling", reason="drafts benchmark")
    trial = services.advance_status(coord, trial, "reading", reason="drafts benchmark")
    for m in members:
        services.enrol_reader(coord, m)
    mv = ModelVersion.objects.create(
        name="tiny-janus-bench", backend=ModelVersion.Backend.JANUS, weights_path=str(weights),
        generation_params={"max_new_tokens": new_tokens, "options": {
            "batch_max": batch_max, "batch_window_ms": window_ms, "min_new_tokens": new_tokens}})
    ArmModelVersion.objects.filter(arm=ai).update(model_version=mv)
    return coord, trial, center, mv


def _cases(coord, trial, center, n: int) -> list:
    import numpy as np
    from pydicom.uid import generate_uid

    from imaging import services as imports
    from imaging.dicom.synthetic import make_secondary_capture_cxr, to_bytes
    from trial.models import Case

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pixels = np.clip(rng.normal(120, 40, (512, 512)), 0, 255).astype(np.uint8)
        ds = make_secondary_capture_cxr(None, pixels=pixels, burned_in_annotation=False)
        ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
        if getattr(ds, "file_meta", None) is not None:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        r = imports.import_file(coord, trial, center, f"{i}.dcm", to_bytes(ds))
        if r.status != "imported":
            raise SystemExit(f"import failed: {r}")
        case = Case.objects.get(trial=trial, code=r.case_code)
        if case.needs_review:
            imports.review_case(coord, case, decision="confirm")
        out.append(Case.objects.get(pk=case.pk))
    return out


class Worker:
    def __init__(self, env: dict, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "-c", "1", "-P", "prefork",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def cpu_s(self) -> float:
        from load_realistic import process_cpu_s

        return process_cpu_s(self.proc.pid)

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _wait_ready(mv, cases, timeout: float, worker: Worker) -> float:
    from inference.models import Draft

    t0 = time.perf_counter()
    ids = [c.pk for c in cases]
    while time.perf_counter() - t0 < timeout:
        done = Draft.objects.filter(case_id__in=ids, model_version=mv, status__in=["ready", "failed"]).count()
        if done == len(ids):
            return time.perf_counter()
        if worker.proc.poll() is not None:
            raise SystemExit(f"worker exited: {worker.log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise SystemExit(f"drafts not done after {timeout} s: {worker.log.read_text()[-3000:]}")


def _enrol_all(coord, cases) -> float:
    from django.db import connection

    from trial import services

    errors = []

    def one(case):
        try:
            services.enrol_case(coord, case)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(c,)) for c in cases]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    if errors:
        raise SystemExit(f"enrolment failed: {errors[:3]}")
    return t0


def run(a) -> dict:
    work = Path(tempfile.mkdtemp(prefix="cxr-drafts-bench-"))
    env = _setup(a.db, a.broker, work / "media")
    from inference.models import Draft
    from inference.tiny import build_tiny_janus

    weights = a.weights or build_tiny_janus(work / "tiny-janus")
    coord, trial, center, mv = _trial(weights, a.new_tokens, a.batch_max, a.window_ms)
    cases = _cases(coord, trial, center, 1 + sum(a.concurrency))
    worker = Worker(env, work / "worker.log")
    rows = []
    try:
        t0 = _enrol_all(coord, cases[:1])
        load_s = _wait_ready(mv, cases[:1], 600, worker) - t0
        print(f"[drafts] worker up, first draft (model load included) in {load_s:.1f} s; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        i = 1
        for k in a.concurrency:
            group = cases[i:i + k]
            i += k
            c0 = worker.cpu_s()
            t0 = _enrol_all(coord, group)
            t1 = _wait_ready(mv, group, 600, worker)
            cpu = worker.cpu_s() - c0
            drafts = list(Draft.objects.filter(case__in=group, model_version=mv))
            sizes = collections.Counter(int((d.parameters or {}).get("batch_size", 1)) for d in drafts)
            failed = sum(d.status == "failed" for d in drafts)
            row = {"concurrent": k, "seconds": round(t1 - t0, 2), "drafts_per_s": round(k / (t1 - t0), 2),
                   "batch_sizes": dict(sorted(sizes.items())), "failed": failed,
                   "worker_cpu_s_per_draft": round(cpu / k, 3), "load_avg": round(os.getloadavg()[0], 1)}
            rows.append(row)
            print(f"[drafts] {k:3d} concurrent: {row['seconds']} s, {row['drafts_per_s']} drafts/s, batch sizes "
                  f"{row['batch_sizes']}, failed {failed}, worker {row['worker_cpu_s_per_draft']} s CPU per draft",
                  flush=True)
    finally:
        worker.stop()
    from django.db import connections

    connections.close_all()
    return {"model": str(a.weights) if a.weights else "tiny random Janus (inference.tiny)",
            "new_tokens": a.new_tokens, "batch_max": a.batch_max,
            "window_ms": a.window_ms, "first_draft_s": round(load_s, 1), "rows": rows,
            "machine": {"cores": os.cpu_count()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--new-tokens", type=int, default=24)
    p.add_argument("--batch-max", type=int, default=32)
    p.add_argument("--window-ms", type=int, default=200)
    p.add_argument("--broker", default=os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/8")
    p.add_argument("--db", default="cxr_drafts")
    p.add_argument("--weights", type=Path, help="a local Janus model folder (e.g. Janus-Pro-CXR on a GPU machine) "
                                                "instead of the tiny random model")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    r = run(a)
    print(f"\n{'concurrent':>10} {'seconds':>8} {'drafts/s':>9} {'CPU s/draft':>11}  batch sizes (size: drafts)")
    for row in r["rows"]:
        print(f"{row['concurrent']:10d} {row['seconds']:8.2f} {row['drafts_per_s']:9.2f} "
              f"{row['worker_cpu_s_per_draft']:11.3f}  {row['batch_sizes']}")
    if a.json:
        a.json.write_text(json.dumps(r, indent=2))
    return 0 if all(row["failed"] == 0 for row in r["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
