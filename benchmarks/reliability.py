"""Reliability under load and faults (issue 8): one command, one summary screen.

Usage (``make reliability``):
    .venv/bin/python benchmarks/reliability.py [--seconds 30] [--readers 50] [--cases 10000]
                                               [--no-worker-kill] [--analysis] [--skip-load] [--skip-faults]

Runs, each in its own subprocess and on its own databases (never the test suite's):
1. benchmarks/load.py: gunicorn + PostgreSQL (database ``cxr_load``), simulated readers for --seconds; the
   exactly-once check of acknowledged submits; verify_audit, and a tampered row caught.
2. The fault tests through pytest (database ``cxr_rel`` -> ``test_cxr_rel``):
   tests/reliability/ (PostgreSQL restarted during a burst of submits; Redis down at enrolment, then
   requeue_drafts and a real worker), the disk-full import test, the killed-worker draft test, and the audit
   tamper tests. The PostgreSQL restart drops every connection to the server: do not run this while others use it
   (RELIABILITY_PG_FAULT=terminate limits the fault to the test database).
3. benchmarks/import_core.py (seconds), and with --analysis benchmarks/analysis.py (about 80 s).
Then prints the summary table. Exit status 0 when every check passed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

FAULT_TESTS = [
    ("PostgreSQL restart mid-burst", "tests/reliability/test_fault_postgres_restart.py"),
    ("Redis down at enrolment", "tests/reliability/test_fault_redis_down.py"),
    ("Disk full while importing",
     "tests/imports/test_import_service.py::test_disk_full_is_a_clear_error_and_leaves_no_half_file"),
    ("Worker killed mid-draft", "tests/inference/test_worker.py::test_killed_worker_draft_is_redone_once"),
    ("Audit: edited row found", "tests/trial/test_audit.py::test_edited_row_is_detected"),
    ("Audit: deleted row found", "tests/trial/test_audit.py::test_deleted_row_is_detected"),
    ("Audit: truncated tail found", "tests/trial/test_audit.py::test_truncated_tail_is_detected"),
]


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url.split("://", 1)[1].split("/", 1)[0]
    return "postgres@127.0.0.1:5432"


def run_load(args, tmp: Path) -> dict | None:
    out = tmp / "load.json"
    cmd = [PY, "benchmarks/load.py", "--seconds", str(args.seconds), "--readers", str(args.readers),
           "--cases", str(args.cases), "--json", str(out)]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, timeout=args.seconds + 900)
    return json.loads(out.read_text()) if out.exists() else None


def run_faults(args, tmp: Path) -> tuple[list[tuple[str, str, float]], float]:
    tests = [t for t in FAULT_TESTS if args.worker_kill or "killed" not in t[0]]
    xml = tmp / "faults.xml"
    env = dict(os.environ, DATABASE_URL=f"postgres://{server_url()}/cxr_rel", HF_HUB_OFFLINE="1",
               DJANGO_ALLOW_ASYNC_UNSAFE="true", DJANGO_SETTINGS_MODULE="config.settings_test")
    env.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", str(xml), *[t[1] for t in tests]]
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, timeout=900)
    wall = time.perf_counter() - t0
    outcomes: dict[str, tuple[str, float]] = {}
    if xml.exists():
        for case in ET.parse(xml).iter("testcase"):
            path = case.get("classname", "").replace(".", "/") + ".py"
            status = "FAIL" if case.find("failure") is not None or case.find("error") is not None else (
                "skip" if case.find("skipped") is not None else "pass")
            outcomes[f"{path}::{case.get('name')}"] = (status, float(case.get("time", 0)))
    rows = []
    for label, node in tests:
        hits = [v for k, v in outcomes.items() if k == node or k.startswith(node.rstrip("/") + "::")
                or (node.endswith("/") and k.startswith(node))]
        if not hits:
            rows.append((label, "not run", 0.0))
        else:
            status = "FAIL" if any(s == "FAIL" for s, _ in hits) else hits[0][0]
            rows.append((label, status, sum(d for _, d in hits)))
    return rows, wall


def run_script(cmd: list[str], timeout: float) -> tuple[int, str, float]:
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    print(p.stdout[-3000:], p.stderr[-1500:] if p.returncode else "", flush=True)
    return p.returncode, p.stdout, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Reliability under load and faults")
    p.add_argument("--seconds", type=float, default=30, help="load phase length (default 30)")
    p.add_argument("--readers", type=int, default=50)
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--no-worker-kill", dest="worker_kill", action="store_false",
                   help="skip the killed-worker test (it builds a tiny Janus model with torch)")
    p.add_argument("--analysis", action="store_true", help="also time benchmarks/analysis.py (~80 s)")
    p.add_argument("--skip-load", action="store_true")
    p.add_argument("--skip-faults", action="store_true")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    ok = True
    with tempfile.TemporaryDirectory(prefix="cxr-reliability-") as d:
        tmp = Path(d)
        load = None if args.skip_load else run_load(args, tmp)
        faults, faults_wall = ([], 0.0) if args.skip_faults else run_faults(args, tmp)
        imp = run_script([PY, "benchmarks/import_core.py", "1"], 300)
        ana = run_script([PY, "benchmarks/analysis.py"], 600) if args.analysis else None

    print("\n" + "=" * 100)
    print("RELIABILITY SUMMARY")
    print("=" * 100)
    if load is not None:
        c, s, i, a = load["config"], load["seed"], load["integrity"], load["audit"]
        print(f"Load: {c['readers']} readers x {load['wall_s']} s on gunicorn {c['workers']}x{c['threads']} gthread, "
              f"{s['cases']} cases ({s['cases_via_services']} via enrol_case at {s['enrol_per_case_ms']} ms, "
              f"{s['cases_bulk']} bulk), {s['reads']} reads")
        print(f"  {load['requests']} requests, {load['rps']} req/s, {load['submits_per_s']} submits/s, "
              f"errors {load['errors']}")
        print("  " + " | ".join(f"{ep} p95 {e['p95_ms']:.0f} ms" for ep, e in load["endpoints"].items()))
        print(f"  submits acknowledged {i['acknowledged']}, stored {i['stored']}, lost {i['lost']}, "
              f"mismatched {i['mismatched']}, doubled {i['doubled']}")
        print(f"  audit {'intact' if a['intact'] else 'BROKEN'}; tampered row "
              f"{'detected' if a['tamper_detected'] else 'NOT DETECTED'}")
        ok &= (load["errors"] == 0 and i["lost"] == 0 and i["mismatched"] == 0 and i["doubled"] == 0
               and a["intact"] and a["tamper_detected"])
    elif not args.skip_load:
        print("Load: FAILED (no result)")
        ok = False
    if faults:
        print(f"Fault tests ({faults_wall:.0f} s with setup):")
        for label, status, dur in faults:
            print(f"  {label:32} {status:8} {dur:6.1f} s")
            ok &= status == "pass"
    print(f"Import core benchmark: {'ok' if imp[0] == 0 else 'FAILED'} ({imp[2]:.1f} s)")
    ok &= imp[0] == 0
    if ana is not None:
        print(f"Analysis benchmark: {'ok' if ana[0] == 0 else 'FAILED'} ({ana[2]:.1f} s)")
        ok &= ana[0] == 0
    print(f"Total {time.perf_counter() - t0:.0f} s. {'ALL CHECKS PASSED' if ok else 'SOME CHECKS FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
