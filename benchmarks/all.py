"""Every speed benchmark at quick settings, then one table (issue 19.4; `make bench`).

    .venv/bin/python benchmarks/all.py [--only import,load,drafts,inference,analysis] [--out DIR]

Each benchmark runs as its own process with the quick settings below and writes its JSON into ``--out`` (a
temporary folder by default); the table gives each figure with the command that produced it, the machine (cores,
load average before and after: the machine may be shared) and the time. PostgreSQL (DATABASE_URL's server; the
load and drafts benchmarks make their own databases on it) and Redis (TEST_REDIS_URL: the drafts broker and the
load benchmark's session cache) must be running; the drafts and inference rows need the inference extra (torch).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# The load and drafts benchmarks drop and recreate their databases: a prefix of one's own on a shared server.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "cxr_bench")

QUICK = {
    "import": ["benchmarks/import.py", "--n", "4", "--jobs", "1"],
    "load": ["benchmarks/load.py", "--realistic", "--readers", "100", "--experts", "10", "--cases", "2000",
             "--sample", "50", "--seconds", "30", "--saturation", "4,16", "--step-seconds", "15",
             "--cache-url", REDIS, "--db", f"{DB_PREFIX}_load", "--port", "8779"],
    "drafts": ["benchmarks/drafts.py", "--concurrency", "1", "8", "--broker", REDIS, "--db", f"{DB_PREFIX}_drafts"],
    "inference": ["benchmarks/inference.py", "--tiny", "--batch-sizes", "1", "8", "--new-tokens", "32",
                  "--repeats", "1"],
    "analysis": ["benchmarks/analysis.py", "--cases", "1000", "--readers", "10"],
}


def rows_import(r: dict) -> list[tuple[str, str]]:
    names = {"raw": "import, CR 1955x1841 uncompressed", "j2k": "import, CR 1955x1841 J2K lossless",
             "htj2k": "import, CR 1955x1841 HTJ2K lossless",
             "jpeg": "import, CR 1024x1024 JPEG baseline"}
    return [(names.get(k, k), f"{v['total']:.0f} ms CPU/image ({1000 / v['total']:.1f}/s per core)")
            for k, v in r["stages_cpu_ms"].items()]


def rows_load(r: dict) -> list[tuple[str, str]]:
    out = []
    for p in r["phases"]:
        worst = max(p["endpoints"].items(), key=lambda kv: kv[1]["p95_ms"])
        cpu = sorted((e["server_cpu_ms"], ep) for ep, e in p["endpoints"].items())
        out.append((f"load {p['phase']}, {p['people']} people",
                    f"{p['rps']} req/s, {p['errors']} errors, p95 all {p['p95_ms_all']} ms (worst {worst[0]} "
                    f"{worst[1]['p95_ms']} ms), server CPU {cpu[0][0]:.1f}-{cpu[-1][0]:.1f} ms/request"))
    i = r["integrity"]
    out.append(("load, submits", f"{i['acknowledged']} acknowledged, lost {i['lost']}, doubled {i['doubled']}"))
    sat = r["saturation_rps_p95_under_250ms"]
    out.append(("load, saturation (p95 < 250 ms)", f"{sat} req/s" if sat is not None else
                "no step had p95 < 250 ms (a busy machine, or too many people per step)"))
    return out


def rows_drafts(r: dict) -> list[tuple[str, str]]:
    return [(f"drafts via Celery, {row['concurrent']} concurrent enrolments",
             f"{row['drafts_per_s']} drafts/s, batch sizes {row['batch_sizes']} ({r['model']}, {r['new_tokens']} "
             f"tokens)") for row in r["rows"]]


def rows_inference(r: dict) -> list[tuple[str, str]]:
    kind = "tiny random" if r.get("tiny") else "Janus-Pro-1B-sized random"
    return [(f"inference, {kind}, {r['device']}, batch {row['batch']}",
             f"{row['reports_per_s']:.2f} reports/s, p50 {row['latency_p50_s']:.3f} s") for row in r["rows"]]


def run_one(name: str, out: Path) -> tuple[list[tuple[str, str]], str, float]:
    cmd = [sys.executable, *QUICK[name]]
    shown = "python " + " ".join(QUICK[name])
    json_path = out / f"{name}.json"
    if name != "analysis":
        cmd += ["--json", str(json_path)]
    t0 = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if name == "import":
        env.pop("DATABASE_URL", None)  # its own throwaway SQLite database, never the server's
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if name == "analysis":
        ok = proc.returncode == 0
        return [("analysis, 1,000 cases / 10 readers", f"{wall:.1f} s wall (analysis + report)" if ok else
                 f"failed (exit {proc.returncode})")], shown, wall
    if not json_path.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        return [(name, f"failed (exit {proc.returncode}): {tail[0][:100]}")], shown, wall
    r = json.loads(json_path.read_text())
    return globals()[f"rows_{name}"](r), shown, wall


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(QUICK))
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="cxr-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    table = []
    for name in [n for n in a.only.split(",") if n]:
        print(f"[bench] {name} ...", flush=True)
        rows, cmd, wall = run_one(name, out)
        table += [(what, figure, cmd) for what, figure in rows]
        print(f"[bench] {name}: {wall:.0f} s", flush=True)
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load0:.1f} "
               f"before, {os.getloadavg()[0]:.1f} after (1 min; other users' work counts too)")
    print(f"\nlogs and JSON in {out}")
    print("| what | figure | command |\n|---|---|---|")
    print(f"| machine | {machine} | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} |")
    for what, figure, cmd in table:
        print(f"| {what} | {figure} | `{cmd}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
