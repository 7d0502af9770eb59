"""Time the full analysis of a large simulated trial (pure: no database), beside lme4 + lmerTest on its primary model.

Tables from analysis.stats.synthetic.make_trial_tables (default 10,000 cases, 40 readers, 5 experts, 4 centers,
paired by case: 20,000 reads, 50,000 ratings), then analysis.pipeline.analyse_results (every section: primary with
subgroups, secondary, reader accuracy, AI standalone and evaluation, CONSORT flow) and analysis.report.render_report.
The reference is R's lme4 + lmerTest fitting the primary quality model alone on the same data (the analysis's own
quality frame: 100,000 scores; tests/analysis/r/lmer_fit.R, lmer + summary timed inside R, so R's start-up and CSV
reading are not counted against it). Issue 13's target: analysis (all sections) within a third of that.

Every row gives wall-clock and CPU seconds. CPU is time.process_time() for Python (all threads of the process) and
R's proc.time() user + sys: on a shared machine the wall clock includes waiting for a core, CPU time does not, so
compare on CPU when the load average is above the number of cores. ``--repeat N`` runs the analysis and report N
times and reports the fastest (each column separately).

Usage: .venv/bin/python benchmarks/analysis.py [--cases N] [--readers N] [--experts N] [--centers N] [--design D]
       [--repeat N] [--no-r] [--out DIR]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import pipeline  # noqa: E402
from analysis.report import render_report  # noqa: E402
from analysis.stats import primary as stats_primary  # noqa: E402
from analysis.stats import trial as stats_trial  # noqa: E402
from analysis.stats.synthetic import TrialScenario, make_trial_tables  # noqa: E402

# statistics called by analyse_trial, timed inside it (wrapped in its module namespace)
INNER = ["primary_analysis", "split_plot_mrmc", "ustat_mrmc", "obuchowski_rockette", "auc_delong",
         "sensitivity_specificity", "calibration_report", "cohen_kappa", "fleiss_kappa", "icc", "paired_t_test",
         "wilcoxon_signed_rank", "geometric_mean_ratio", "relative_reduction", "welch_t_test", "preference_rate",
         "panel_majority", "_quality_long"]
PIPELINE = ["ai_evaluation", "consort_flow", "prepare_tables"]


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0


def _instrument(module: object, names: list[str], acc: dict[str, list[tuple[float, float]]]) -> None:
    for name in names:
        fn = getattr(module, name, None)
        if fn is None:
            continue

        @functools.wraps(fn)
        def timed(*a, __fn=fn, __name=name, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return __fn(*a, **k)
            finally:
                acc[__name].append((time.perf_counter() - t0, time.process_time() - c0))

        setattr(module, name, timed)


def _lme4(tables: dict[str, pd.DataFrame], design: str, workdir: Path) -> dict | None:
    """lme4 + lmerTest on the primary quality model of these tables (the frame and terms the analysis fits)."""
    if shutil.which("Rscript") is None:
        return None
    q = stats_primary.quality_frame(pipeline.prepare_tables(tables), "ai_assisted", "unassisted")
    groups, _ = stats_primary.identifiable_groups(q, stats_primary.QUALITY_TERMS[design])
    X = stats_primary._design_matrix(q)  # noqa: N806, SLF001 - the analysis's own fixed design
    df = pd.DataFrame({"y": q["score"].to_numpy(float)})
    for c in X.columns:
        df[f"f_{c}"] = X[c].to_numpy()
    for k, v in groups.items():
        df[f"g_{k}"] = v
    data, out = workdir / "quality.csv", workdir / "lmer.json"
    df.to_csv(data, index=False, float_format="%.17g")
    with Clock() as whole:
        subprocess.run(["Rscript", str(ROOT / "tests/analysis/r/lmer_fit.R"), str(data), str(out), "1", "0"],
                       check=True, capture_output=True, text=True)
    ref = json.loads(out.read_text())
    sec = ref["seconds"]
    msgs = ref["optimizer_messages"]
    msgs = [msgs] if isinstance(msgs, str) else list(msgs)
    arm = ref["names"].index("arm")
    return {"wall": sec["lmer"] + sec["summary"], "cpu": sec["lmer_cpu"] + sec["summary_cpu"],
            "process_wall": whole.wall, "versions": ref["versions"], "arm": ref["coef"][arm],
            "df": ref["df"][arm], "converged": not msgs, "messages": msgs, "n": len(df)}


def _blas_threads() -> str:
    return ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info()) or "none"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--readers", type=int, default=40)
    ap.add_argument("--experts", type=int, default=5)
    ap.add_argument("--centers", type=int, default=4)
    ap.add_argument("--design", default="paired_by_case")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="run analysis and report N times, keep the fastest")
    ap.add_argument("--no-r", action="store_true", help="skip lme4 + lmerTest")
    ap.add_argument("--out", help="report directory (default: a temporary one)")
    a = ap.parse_args(argv)

    inner: dict[str, list[tuple[float, float]]] = defaultdict(list)
    _instrument(stats_trial, INNER, inner)
    _instrument(pipeline, PIPELINE, inner)
    with Clock() as sim:
        tables = make_trial_tables(design=a.design, n_cases=a.cases, n_readers=a.readers, n_experts=a.experts,
                                   n_centers=a.centers, seed=a.seed)
    manifest = {"trial": "BENCH", "design": a.design, "arms_masked": False, "assisted_arm": "ai_assisted",
                "preference_majority": a.experts // 2 + 1, "code_version": "benchmark", "data_sha256": "-"}
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    runs: list[tuple[Clock, Clock]] = []
    for i in range(max(1, a.repeat)):
        if i:
            inner.clear()
        with Clock() as analysis:
            results = pipeline.analyse_results(tables, manifest)
        with Clock() as report:
            render_report(results, tables, manifest, out)
        runs.append((analysis, report))
    ref = None
    if not a.no_r:
        with tempfile.TemporaryDirectory() as tmp:
            ref = _lme4(tables, a.design, Path(tmp))

    best = {k: min(getattr(r[0], k) for r in runs) for k in ("wall", "cpu")}
    best_r = {k: min(getattr(r[1], k) for r in runs) for k in ("wall", "cpu")}
    both = {k: min(getattr(r[0], k) + getattr(r[1], k) for r in runs) for k in ("wall", "cpu")}
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in tables.items())
    print(f"Simulated trial: {a.cases:,} cases, {a.readers} readers, {a.experts} experts, {a.centers} centers "
          f"({a.design}); rows: {sizes}")
    print(f"Machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"BLAS threads: {_blas_threads()}; fastest of {len(runs)} run(s)")
    print(f"\n| {'what':<62} | {'wall s':>7} | {'CPU s':>7} |")
    print(f"|{'-' * 64}|{'-' * 9}|{'-' * 9}|")

    def row(name: str, wall: float | None, cpu: float | None) -> None:
        w = f"{wall:7.2f}" if wall is not None else f"{'-':>7}"
        c = f"{cpu:7.2f}" if cpu is not None else f"{'-':>7}"
        print(f"| {name:<62} | {w} | {c} |")

    if ref is not None:
        v = ref["versions"]
        row(f"lme4 {v['lme4']} + lmerTest {v['lmerTest']}: primary quality model alone ({ref['n']:,} scores)",
            ref["wall"], ref["cpu"])
        row("  target: a third of that", ref["wall"] / 3, ref["cpu"] / 3)
    row("analysis, all sections (analyse_results)", best["wall"], best["cpu"])
    row("report (figures, HTML x2, JSON)", best_r["wall"], best_r["cpu"])
    row("analysis + report", both["wall"], both["cpu"])
    row("(simulating the tables, not part of the analysis)", sim.wall, sim.cpu)
    if ref is not None:
        print(f"\nlme4 / analysis: {ref['wall'] / best['wall']:.2f}x wall, {ref['cpu'] / best['cpu']:.2f}x CPU; "
              f"lme4 / (analysis + report): {ref['wall'] / both['wall']:.2f}x wall, "
              f"{ref['cpu'] / both['cpu']:.2f}x CPU (target >= 3)")
        conv = "converged" if ref["converged"] else "did not converge: " + "; ".join(ref["messages"])
        print(f"lme4: arm {ref['arm']:.6f}, df {ref['df']:.3f}, {conv}; R process {ref['process_wall']:.2f} s wall "
              "(start-up and CSV read included)")
    print(f"\nInside the last analysis ({'calls':>5}, {'wall s':>7}, {'CPU s':>7}):")
    for name, times in sorted(inner.items(), key=lambda kv: -sum(c for _, c in kv[1])):
        if sum(c for _, c in times) >= 0.01:
            print(f"  {name:44} {len(times):5d} {sum(w for w, _ in times):9.2f} {sum(c for _, c in times):9.2f}")
    truth = TrialScenario(design=a.design, n_cases=a.cases, n_readers=a.readers, n_experts=a.experts,
                          n_centers=a.centers).truths()
    q, t = results.primary.quality, results.primary.reading_time
    print(f"\nprimary quality difference {q.estimate:.6f} (true {truth['quality']}), df {q.df:.3f}, "
          f"CI {q.ci[0]:.3f}-{q.ci[1]:.3f}; time ratio {t.estimate:.3f} (true {truth['reading_time']}), "
          f"CI {t.ci[0]:.3f}-{t.ci[1]:.3f}; report in {out}")


if __name__ == "__main__":
    main()
