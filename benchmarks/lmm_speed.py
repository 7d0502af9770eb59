"""Time analysis/stats/lmm.py against R's lme4 + lmerTest on the quality model of a large paired-by-case trial.

Data: tests/analysis/lmm_trials.py (default 10,000 cases, 40 readers nested in arms, 4 centers, 5 experts per
report: 100,000 ratings; factors reader 40, case 10,000, report 20,000, expert 5). Model: score ~ arm + center +
(1|reader) + (1|case) + (1|report) + (1|expert), REML, Satterthwaite df. R side: tests/analysis/r/lmer_fit.R with
lme4's default optimiser settings; its lmer() and summary() times are measured inside R (system.time), so R's
start-up and CSV reading are not counted against it (they are shown as "R process").

Usage: .venv/bin/python benchmarks/lmm_speed.py [--cases N] [--readers N] [--experts N] [--centers N] [--no-r]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "analysis"))

from lmm_trials import simulate  # noqa: E402

from analysis.stats.lmm import fit_lmm  # noqa: E402


def _row(name: str, wall: float, cpu: float, est: float, se: float, df: float, p: float, crit: float,
         ok: str) -> str:
    return (f"{name:<42}{wall:>8.2f}{cpu:>8.2f}{est:>10.5f}{se:>10.6f}{df:>8.2f}{p:>8.4f}{crit:>18.6f}  {ok}")


def _run_r(trial, workdir: Path) -> tuple[dict, float]:  # noqa: ANN001
    data, out = workdir / "data.csv", workdir / "lmer.json"
    trial.to_csv(data)
    t0 = time.perf_counter()
    subprocess.run(["Rscript", str(ROOT / "tests/analysis/r/lmer_fit.R"), str(data), str(out), "1", "0"],
                   check=True, capture_output=True, text=True)
    return json.loads(out.read_text()), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--readers", type=int, default=40)
    ap.add_argument("--experts", type=int, default=5)
    ap.add_argument("--centers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-r", action="store_true", help="time the Python engine only")
    a = ap.parse_args(argv)

    trial = simulate("paired_by_case", n_cases=a.cases, n_readers=a.readers, n_centers=a.centers, seed=a.seed,
                     experts=(a.experts, a.experts))
    levels = {k: len(set(v.tolist())) for k, v in trial.groups.items()}
    print(f"paired-by-case trial: {len(trial.y)} ratings, levels {levels}, fixed {list(trial.X.columns)}")
    t0, c0 = time.perf_counter(), time.process_time()
    fit = fit_lmm(trial.y, trial.X, trial.groups)
    py_s, py_cpu = time.perf_counter() - t0, time.process_time() - c0
    arm = fit.coef_test("arm")
    print(f"\n{'engine':<42}{'wall s':>8}{'CPU s':>8}{'arm':>10}{'SE':>10}{'df':>8}{'p':>8}"
          f"{'REML crit':>18}  converged")
    print(_row(fit.engine.split(" (")[0] + " (fit + Satterthwaite)", py_s, py_cpu, arm.estimate, arm.se, arm.df,
               arm.p, fit.reml_criterion, str(fit.converged)))
    if a.no_r or shutil.which("Rscript") is None:
        print("\n(R side skipped)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        ref, r_wall = _run_r(trial, Path(tmp))
    i = ref["names"].index("arm")
    sec = ref["seconds"]
    r_model, r_cpu = sec["lmer"] + sec["summary"], sec["lmer_cpu"] + sec["summary_cpu"]
    msgs = ref["optimizer_messages"]
    msgs = [msgs] if isinstance(msgs, str) else list(msgs)
    conv = ("False: " + "; ".join(msgs)) if msgs else "True"
    name = f"lme4 {ref['versions']['lme4']} + lmerTest {ref['versions']['lmerTest']} (lmer + summary)"
    print(_row(name, r_model, r_cpu, ref["coef"][i], ref["se"][i], ref["df"][i], ref["p"][i],
               ref["reml_criterion"], conv))
    print(f"{'  R process (start-up, CSV read, fit)':<42}{r_wall:>8.2f}")
    print(f"\nspeed-up: {r_model / py_s:.1f}x wall, {r_cpu / py_cpu:.1f}x CPU "
          "(R lmer + summary against the Python fit)")
    print(f"Python optimiser: {fit.message}")


if __name__ == "__main__":
    main()
