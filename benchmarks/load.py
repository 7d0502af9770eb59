"""Load benchmark (issue 8): the reader API under gunicorn + PostgreSQL, 50 simulated readers at once.

Usage:
    .venv/bin/python benchmarks/load.py [--seconds 60] [--readers 50] [--cases 10000] [--workers 4] [--threads 8]
                                        [--db cxr_load] [--port 8765] [--json results.json]

What it does, in order (bounded: every phase has a time limit; gunicorn is always stopped at the end):
1. Drops and recreates its own database (default ``cxr_load`` on the PostgreSQL of DATABASE_URL, or
   127.0.0.1:5432 as postgres) and migrates it.
2. Seeds a paired-by-case trial through the services: coordinator, 5 centers, 2 arms (the AI arm on the
   retrieval baseline), the readers (randomised to arms by the sealed allocation list, enrolled), 5 experts, and a
   sample of cases added and enrolled through ``trial.services.enrol_case``. Enrolment through the services is
   strictly sequential (every enrolment appends to the coordinator's audit chain under a row lock, and picks the least
   loaded reader with a COUNT over the reads), so its rate is measured on the sample; when 10,000 cases would take
   more than 3 minutes that way, the rest are bulk-created (Case + Read rows as enrolment would make them, same
   reader balancing and worklist order keys) without audit entries. Drafts are marked ready in bulk (the model is
   not what is measured here). A DRF token per reader.
3. Starts ``gunicorn config.wsgi`` (gthread) on 127.0.0.1 only, DEBUG off, persistent DB connections.
4. Drives the readers for ``--seconds``: each loops worklist -> read detail -> open -> 2 heartbeats -> autosave ->
   submit (a report text unique to the read), no think time.
5. Stops gunicorn, prints requests/s, p50/p95/p99 per endpoint and errors, then checks the database: every submit
   acknowledged with a 2xx is stored exactly once with the text sent (lost = 0, mismatched = 0, doubled = 0).
6. Runs ``manage.py verify_audit`` (must pass), then tampers with one audit row of its own database and runs it
   again (must report the broken link).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED_ENROL_LIMIT_S = 180.0  # enrol everything through the services only if it would take less than this
ENDPOINTS = ("worklist", "detail", "open", "heartbeat", "autosave", "submit")


# -- database and environment ---------------------------------------------------------------------------------
def server_url() -> str:
    """postgres://user@host:port of DATABASE_URL (or the local default), without a database name."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url.split("://", 1)[1].split("/", 1)[0]
    return "postgres@127.0.0.1:5432"


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://{server_url()}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def app_env(db_name: str, conn_max_age: int = 60) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{server_url()}/{db_name}",
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY="load-benchmark-" + secrets.token_hex(24),
        AUDIT_SIGNING_KEY="load-benchmark-audit-" + secrets.token_hex(24),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        CELERY_BROKER_URL="",  # no broker: nothing is queued while reading
        CONN_MAX_AGE=str(conn_max_age),
        LOG_LEVEL="ERROR",
        PYTHONUNBUFFERED="1",
        # The cases' display images (seed_images) live in the benchmark's own media folder, not the checkout's.
        MEDIA_ROOT=str(Path(os.environ.get("TMPDIR", "/tmp")) / f"cxr-load-media-{db_name}"),
    )
    return env


def manage(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


# -- seeding (in this process, through Django) ----------------------------------------------------------------
def seed_images(trial) -> int:
    """One image per case, all sharing one display rendition the size of the real chest CR (1955 x 1841, 8-bit
    PNG): what the read page's viewer fetches (its metadata, then the display image). Rows made in bulk, as the
    import would leave them (no full range: the viewer fetches it only on a first window/level)."""
    import numpy as np
    from django.conf import settings
    from PIL import Image as PILImage

    from imaging.models import Image
    from trial.models import Case

    w, h = 1955, 1841
    rel = "load/display.png"
    path = Path(settings.MEDIA_ROOT) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(0).integers(0, 12, size=(h, w))
    pixels = (96 + 80 * np.sin(xx / 170.0) * np.cos(yy / 230.0) + noise).clip(0, 255).astype(np.uint8)
    PILImage.fromarray(pixels).save(path, optimize=False)
    display = {"width": w, "height": h, "min": 0, "max": 4095, "window_center": 2048, "window_width": 4096}
    rows = [Image(public_id=secrets.token_urlsafe(18)[:24], case_id=pk, source_sha256=f"{pk:064d}",
                  sha256=f"{pk:064d}", dicom_file="", display_file=rel, full_range_file="",
                  sop_instance_uid=f"2.25.{pk}", modality="CR", view_position="PA", rows=h, columns=w,
                  bits_allocated=16, bits_stored=12, photometric_interpretation="MONOCHROME2", display=display)
            for pk in Case.objects.filter(trial=trial).exclude(images__isnull=False).values_list("pk", flat=True)]
    Image.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def seed(n_cases: int, n_readers: int, n_centers: int = 5, sample: int = 300, code: str = "LOAD",
         n_experts: int = 5) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    import inference.services as inference_services
    from inference.models import Draft
    from inference.selectors import arm_model_version
    from reading.models import Read
    from reading.services import worklist_order_key
    from trial import services
    from trial.models import Case, Membership

    User = get_user_model()
    # Drafts are marked ready in bulk below; nothing is sent to a broker or run in-process while seeding.
    inference_services.send_draft_task = lambda draft_id: False

    t0 = time.perf_counter()
    coord = User.objects.create_user("load-coord", is_staff=True, password=None)
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    coord = User.objects.get(pk=coord.pk)
    trial = services.create_trial(coord, code=code, title="Load benchmark trial")
    centers = [services.add_center(coord, trial, code=f"c{i + 1}", name=f"Center {i + 1}") for i in range(n_centers)]
    services.add_arm(coord, trial, code="unassisted", name="Standard care")
    ai = services.add_arm(coord, trial, code="ai_assisted", name="AI-assisted", is_ai=True)
    members = []
    for i in range(n_readers):
        u = User.objects.create_user(f"load-reader-{i:03d}", password=None)
        members.append(services.add_member(coord, trial, user=u, role="reader", center=centers[i % n_centers],
                                           experience="junior" if i % 2 else "senior"))
    for i in range(n_experts):
        u = User.objects.create_user(f"load-expert-{i}", password=None)
        services.add_member(coord, trial, user=u, role="expert", center=centers[i % n_centers])
    services.generate_allocation_list(coord, trial, seed="load-seed", block_sizes=[2, 4],
                                      slots_per_stratum=max(100, n_readers))
    trial = services.advance_status(coord, trial, "enrolling", reason="load benchmark")
    trial = services.advance_status(coord, trial, "reading", reason="load benchmark")
    members = [services.enrol_reader(coord, m) for m in members]
    tokens = {m.user.username: Token.objects.create(user=m.user).key for m in members}
    t_people = time.perf_counter() - t0

    # A sample of cases through the real services (add_case + enrol_case): reads, audit entries, queued drafts.
    sample = min(sample, n_cases)
    t1 = time.perf_counter()
    for i in range(sample):
        case = services.add_case(coord, trial, center=centers[i % n_centers], code=f"L{i:06d}")
        services.enrol_case(coord, case)
    t_sample = time.perf_counter() - t1
    per_case = t_sample / max(sample, 1)
    projected = per_case * n_cases
    via_services = sample
    if projected <= SEED_ENROL_LIMIT_S:
        for i in range(sample, n_cases):
            case = services.add_case(coord, trial, center=centers[i % n_centers], code=f"L{i:06d}")
            services.enrol_case(coord, case)
        via_services = n_cases
    else:
        # Bulk path: the same rows enrol_case makes (case enrolled; one read per arm, given to the least loaded
        # reader of that arm at the case's center; the reader's worklist order key), minus the audit entries.
        trial.refresh_from_db()
        arms = list(trial.arms.all())
        load = {m.pk: Read.objects.filter(reader=m).count() for m in members}
        by_center_arm = defaultdict(list)
        for m in Membership.objects.filter(trial=trial, role="reader").order_by("pk"):
            by_center_arm[(m.center_id, m.arm_id)].append(m)
        now = timezone.now()
        with transaction.atomic():
            cases = Case.objects.bulk_create(
                [Case(trial=trial, center=centers[i % n_centers], code=f"L{i:06d}", status=Case.Status.ENROLLED,
                      enrolled_at=now) for i in range(sample, n_cases)], batch_size=2000)
            reads = []
            for case in cases:
                for arm in arms:
                    pool = by_center_arm[(case.center_id, arm.pk)]
                    reader = min(pool, key=lambda m: (load[m.pk], m.pk)) if pool else None
                    if reader is not None:
                        load[reader.pk] += 1
                    key = worklist_order_key(trial, reader.pk if reader else 0, case.pk, 1)
                    reads.append(Read(case=case, arm=arm, reader=reader, order_key=key))
            Read.objects.bulk_create(reads, batch_size=2000)
            ai_version = arm_model_version(ai)  # the arm's model version (issue 16: ArmModelVersion)
            Draft.objects.bulk_create([Draft(case=c, model_version=ai_version) for c in cases], batch_size=2000)
    seed_images(trial)
    Draft.objects.filter(case__trial=trial).update(
        status=Draft.Status.READY, findings_text="Retrieval draft: lungs are clear. No effusion.",
        impression_text="No acute cardiopulmonary process.",
        probabilities={f["code"]: 0.2 for f in trial.findings}, finished_at=timezone.now())
    t_total = time.perf_counter() - t0
    return {
        "trial": code, "tokens": tokens, "finding_codes": trial.finding_codes, "cases": n_cases,
        "cases_via_services": via_services, "cases_bulk": n_cases - via_services,
        "reads": Read.objects.filter(case__trial=trial).count(), "readers": len(members),
        "seed_people_s": round(t_people, 2), "enrol_per_case_ms": round(per_case * 1000, 1),
        "enrol_projected_s": round(projected, 1), "seed_total_s": round(t_total, 1),
    }


# -- gunicorn ---------------------------------------------------------------------------------------------------
class Gunicorn:
    def __init__(self, env: dict, port: int, workers: int, threads: int, log: Path, extra: list[str] | None = None):
        self.port, self.log = port, log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-w", str(workers), "-k", "gthread",
             "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--timeout", "60", "--graceful-timeout", "5",
             "--backlog", "2048", "--preload", "--error-logfile", "-", *(extra or [])],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, token: str, trial: str, timeout: float = 60) -> None:
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            try:
                r = httpx.get(f"http://127.0.0.1:{self.port}/api/reading/trials/{trial}/worklist/",
                              headers={"Authorization": f"Token {token}"}, timeout=10)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn not ready after {timeout}s: {self.log.read_text()[-2000:]}")

    def warm_up(self, tokens: list[str], trial: str, n: int) -> None:
        """Concurrent requests (not measured) so that every worker and thread has loaded the URLconf and
        opened its database connection before the clock starts."""
        import httpx

        def one(token):
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/api/reading/trials/{trial}/worklist/",
                          headers={"Authorization": f"Token {token}"}, timeout=60)
            except httpx.HTTPError:
                pass

        ths = [threading.Thread(target=one, args=(tokens[i % len(tokens)],)) for i in range(n)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(90)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)


# -- the simulated readers --------------------------------------------------------------------------------------
class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)  # endpoint -> seconds (every response, 2xx or not)
        self.status = defaultdict(lambda: defaultdict(int))  # endpoint -> status (or exception name) -> count
        self.acked = []  # (public_id, findings_text, already_submitted)

    def add(self, endpoint: str, seconds: float, status) -> None:
        with self.lock:
            self.latency[endpoint].append(seconds)
            self.status[endpoint][status] += 1


def report_for(username: str, public_id: str, codes: list[str]) -> dict:
    rnd = random.Random(public_id)
    return {
        "findings_text": f"Load report {username} {public_id} {secrets.token_hex(4)}. Lungs clear.",
        "impression_text": "No acute disease.",
        "finding_marks": {c: {"present": rnd.random() < 0.3, "confidence": rnd.randint(1, 5)} for c in codes},
    }


def reader_loop(base: str, username: str, token: str, trial: str, codes: list[str], deadline: float,
                stats: Stats) -> None:
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30) as client:

        def call(endpoint: str, method: str, url: str, body=None):
            t = time.perf_counter()
            try:
                r = client.request(method, url, json=body)
            except httpx.HTTPError as exc:
                stats.add(endpoint, time.perf_counter() - t, type(exc).__name__)
                return None
            stats.add(endpoint, time.perf_counter() - t, r.status_code)
            return r

        while time.monotonic() < deadline:
            r = call("worklist", "GET", f"/api/reading/trials/{trial}/worklist/")
            if r is None or r.status_code != 200:
                time.sleep(0.5)
                continue
            pid = r.json().get("next")
            if not pid:
                return
            base_url = f"/api/reading/reads/{pid}/"
            call("detail", "GET", base_url)
            call("open", "POST", base_url + "open/")
            call("heartbeat", "POST", base_url + "heartbeat/", {"seconds": 5})
            report = report_for(username, pid, codes)
            call("autosave", "POST", base_url + "autosave/", {**report, "findings_text": report["findings_text"][:20]})
            call("heartbeat", "POST", base_url + "heartbeat/", {"seconds": 5})
            r = call("submit", "POST", base_url + "submit/", {**report, "seconds": 3})
            if r is not None and 200 <= r.status_code < 300:
                with stats.lock:
                    stats.acked.append((pid, report["findings_text"], bool(r.json().get("already_submitted"))))


def drive(base: str, seeded: dict, seconds: float) -> tuple[Stats, float]:
    stats = Stats()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=reader_loop, args=(base, user, token, seeded["trial"], seeded["finding_codes"],
                                                   deadline, stats), daemon=True)
        for user, token in seeded["tokens"].items()
    ]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 60)  # a request in flight at the deadline finishes (30 s client timeout)
    return stats, time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# -- checks -----------------------------------------------------------------------------------------------------
def check_exactly_once(acked: list[tuple[str, str, bool]], trial_code: str) -> dict:
    """Every acknowledged submit is in the database once, with the text that was sent."""
    from django.db.models import Count

    from reading.models import Read
    from trial.models import AuditEntry

    sent = {}
    created_acks = defaultdict(int)
    for pid, text, already in acked:
        sent.setdefault(pid, text)
        if not already:
            created_acks[pid] += 1
    rows = {r.public_id: r for r in Read.objects.filter(public_id__in=list(sent)).only(
        "public_id", "pk", "submitted_at", "findings_text", "status")}
    lost = [pid for pid in sent if pid not in rows or rows[pid].submitted_at is None]
    mismatched = [
        pid for pid in sent if pid in rows and rows[pid].submitted_at and rows[pid].findings_text != sent[pid]
    ]
    submits = (AuditEntry.objects.filter(trial__code=trial_code, action="read:submit")
               .values("object_id").annotate(n=Count("id")))
    doubled_audit = [s["object_id"] for s in submits if s["n"] > 1]
    doubled_ack = [pid for pid, n in created_acks.items() if n > 1]
    submitted_in_db = Read.objects.filter(case__trial__code=trial_code, submitted_at__isnull=False).count()
    return {
        "acknowledged": len(acked), "acknowledged_reads": len(sent), "stored": len(sent) - len(lost),
        "lost": len(lost), "mismatched": len(mismatched), "doubled": len(doubled_audit) + len(doubled_ack),
        "submitted_in_db": submitted_in_db, "stored_unacknowledged": submitted_in_db - (len(sent) - len(lost)),
        "examples": {"lost": lost[:3], "mismatched": mismatched[:3], "doubled": (doubled_audit + doubled_ack)[:3]},
    }


def audit_checks(env: dict) -> dict:
    """verify_audit on the benchmark's database, then once more after tampering with one entry."""
    from django.db import connection

    from trial.models import AuditEntry

    first = manage(env, "verify_audit")
    victim = AuditEntry.objects.filter(action="read:submit").order_by("-pk").first() or AuditEntry.objects.last()
    with connection.cursor() as cur:  # bypasses the model: an edit made directly in the database
        cur.execute("UPDATE trial_auditentry SET reason = %s WHERE id = %s", ["tampered by load.py", victim.pk])
    second = manage(env, "verify_audit")
    return {
        "intact": first.returncode == 0, "verify_output": (first.stdout + first.stderr).strip()[-400:],
        "tampered_entry": victim.pk,
        "tamper_detected": second.returncode != 0 and f"id {victim.pk}" in (second.stdout + second.stderr),
        "tamper_output": (second.stdout + second.stderr).strip()[-400:],
    }


# -- main -------------------------------------------------------------------------------------------------------
def run(seconds: float = 60, readers: int = 50, cases: int = 10_000, workers: int = 4, threads: int = 8,
        db: str = "cxr_load", port: int = 8765, sample: int = 300) -> dict:
    t_start = time.perf_counter()
    print(f"[load] database {db}: drop, create, migrate", flush=True)
    recreate_database(db)
    env = app_env(db)
    mig = manage(env, "migrate", "--noinput", "-v0")
    if mig.returncode != 0:
        raise SystemExit(f"migrate failed: {mig.stderr[-2000:]}")

    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY",
                                           "MEDIA_ROOT", "AUDIT_SIGNING_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT",
                                           "CELERY_BROKER_URL")})
    os.environ["CONN_MAX_AGE"] = "0"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    print(f"[load] seeding {cases} cases, {readers} readers", flush=True)
    seeded = seed(cases, readers, sample=sample)
    print(f"[load] seeded in {seeded['seed_total_s']} s: {seeded['cases_via_services']} cases through enrol_case "
          f"({seeded['enrol_per_case_ms']} ms each; all {cases} would take {seeded['enrol_projected_s']} s), "
          f"{seeded['cases_bulk']} bulk-created; {seeded['reads']} reads", flush=True)

    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"cxr-load-gunicorn-{port}.log"
    server = Gunicorn(env, port, workers, threads, log)
    try:
        first_token = next(iter(seeded["tokens"].values()))
        server.wait_ready(first_token, seeded["trial"])
        server.warm_up(list(seeded["tokens"].values()), seeded["trial"], workers * threads)
        print(f"[load] gunicorn {workers} workers x {threads} threads on 127.0.0.1:{port}; "
              f"{readers} readers for {seconds:.0f} s", flush=True)
        stats, wall = drive(f"http://127.0.0.1:{port}", seeded, seconds)
    finally:
        server.stop()

    total = sum(len(v) for v in stats.latency.values())
    endpoints = {}
    for ep in ENDPOINTS:
        lat = stats.latency.get(ep, [])
        codes = dict(stats.status.get(ep, {}))
        ok = sum(n for s, n in codes.items() if isinstance(s, int) and 200 <= s < 300)
        endpoints[ep] = {
            "requests": len(lat), "ok": ok, "errors": len(lat) - ok,
            "statuses": {str(k): v for k, v in codes.items()},
            "p50_ms": round(pct(lat, 50) * 1000, 1), "p95_ms": round(pct(lat, 95) * 1000, 1),
            "p99_ms": round(pct(lat, 99) * 1000, 1),
        }
    from django.db import connections

    connections.close_all()
    integrity = check_exactly_once(stats.acked, seeded["trial"])
    audit = audit_checks(env)
    result = {
        "config": {"seconds": seconds, "readers": readers, "cases": cases, "workers": workers, "threads": threads,
                   "db": db},
        "seed": {k: v for k, v in seeded.items() if k not in ("tokens", "finding_codes")},
        "wall_s": round(wall, 1), "requests": total, "rps": round(total / wall, 1),
        "submits_per_s": round(integrity["acknowledged"] / wall, 2),
        "errors": sum(e["errors"] for e in endpoints.values()), "endpoints": endpoints,
        "integrity": integrity, "audit": audit, "total_s": round(time.perf_counter() - t_start, 1),
    }
    print_result(result)
    connections.close_all()
    return result


def print_result(r: dict) -> None:
    print()
    print(f"Load: {r['config']['readers']} readers, {r['wall_s']} s, gunicorn {r['config']['workers']}x"
          f"{r['config']['threads']} gthread, {r['seed']['cases']} cases / {r['seed']['reads']} reads")
    print(f"  {r['requests']} requests, {r['rps']} req/s, {r['submits_per_s']} submits/s, {r['errors']} errors")
    print(f"  {'endpoint':10} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for ep, e in r["endpoints"].items():
        print(f"  {ep:10} {e['requests']:9d} {e['errors']:7d} {e['p50_ms']:8.1f} {e['p95_ms']:8.1f} {e['p99_ms']:8.1f}"
              + ("" if not e["errors"] else f"   {e['statuses']}"))
    i = r["integrity"]
    print(f"  submits acknowledged {i['acknowledged']} ({i['acknowledged_reads']} reads), stored {i['stored']}, "
          f"lost {i['lost']}, text mismatched {i['mismatched']}, doubled {i['doubled']}, "
          f"stored but unacknowledged {i['stored_unacknowledged']}")
    a = r["audit"]
    print(f"  verify_audit: {'intact' if a['intact'] else 'BROKEN'} ({a['verify_output'].splitlines()[-1]})")
    print(f"  after tampering with entry {a['tampered_entry']}: "
          f"{'detected' if a['tamper_detected'] else 'NOT DETECTED'} ({a['tamper_output'].splitlines()[-1]})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--readers", type=int, default=50)
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--db", default="cxr_load")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--sample", type=int, default=300, help="cases enrolled through the services (rate measured)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--realistic", action="store_true",
                   help="readers and experts with the trial's think times (benchmarks/load_realistic.py)")
    p.add_argument("--experts", type=int, default=None, help="--realistic: experts (default readers / 10)")
    p.add_argument("--think-scale", type=float, default=1.0, help="--realistic: think times multiplied by this")
    p.add_argument("--saturation", default="", help="--realistic: then K people with no think time, e.g. 4,8,16,32")
    p.add_argument("--step-seconds", type=float, default=20, help="--realistic: seconds per saturation step")
    p.add_argument("--reader-flow", choices=("api", "browser"), default="api",
                   help="--realistic: api = worklist API, read page, detail and open APIs (the earlier benchmark); "
                        "browser = what read.js does: the next-read link, the read page (which opens the read)")
    p.add_argument("--client", choices=("light", "httpx"), default="light",
                   help="--realistic: the load generator's HTTP client: light = benchmarks/light_http.py (little CPU "
                        "per request), httpx = httpx.AsyncClient (to compare)")
    p.add_argument("--cache-url", default=os.environ.get("LOAD_CACHE_URL", ""),
                   help="--realistic: CACHE_URL for the server (Redis: cached_db sessions)")
    a = p.parse_args(argv)
    if a.realistic:
        import load_realistic

        a.experts = max(1, a.readers // 10) if a.experts is None else a.experts
        r = load_realistic.run(a)
        if a.json:
            a.json.write_text(json.dumps(r, indent=2, default=str))
        i = r["integrity"]
        return 0 if i["lost"] == 0 and i["mismatched"] == 0 and i["doubled"] == 0 else 1
    r = run(a.seconds, a.readers, a.cases, a.workers, a.threads, a.db, a.port, a.sample)
    if a.json:
        a.json.write_text(json.dumps(r, indent=2, default=str))
    i, au = r["integrity"], r["audit"]
    ok = i["lost"] == 0 and i["mismatched"] == 0 and i["doubled"] == 0 and au["intact"] and au["tamper_detected"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
