"""Time the full analysis of a large simulated trial (pure: no database).

Tables from analysis.stats.synthetic.make_trial_tables (default 10,000 cases, 40 readers, 5 experts, 4 centers,
paired by case: 20,000 reads, 50,000 ratings), then analysis.pipeline.analyse (analyse_trial_tables on the analysis
set) and analysis.report.render_report. Prints one row per stage, and the heaviest statistics inside the analysis.

Usage: .venv/bin/python benchmarks/analysis.py [--cases N] [--readers N] [--experts N] [--centers N] [--out DIR]
"""
from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import pipeline  # noqa: E402
from analysis.report import render_report  # noqa: E402
from analysis.stats import trial as stats_trial  # noqa: E402
from analysis.stats.synthetic import TrialScenario, make_trial_tables  # noqa: E402

# statistics called by analyse_trial, timed inside it (wrapped in its module namespace)
INNER = ["primary_analysis", "split_plot_mrmc", "obuchowski_rockette", "auc_delong", "sensitivity_specificity",
         "cohen_kappa", "fleiss_kappa", "icc", "paired_t_test", "wilcoxon_signed_rank", "geometric_mean_ratio",
         "relative_reduction", "welch_t_test", "preference_rate", "panel_majority", "_quality_long"]


def _instrument(acc: dict[str, list[float]]) -> None:
    for name in INNER:
        fn = getattr(stats_trial, name, None)
        if fn is None:
            continue

        @functools.wraps(fn)
        def timed(*a, __fn=fn, __name=name, **k):
            t0 = time.perf_counter()
            try:
                return __fn(*a, **k)
            finally:
                acc[__name].append(time.perf_counter() - t0)

        setattr(stats_trial, name, timed)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--readers", type=int, default=40)
    ap.add_argument("--experts", type=int, default=5)
    ap.add_argument("--centers", type=int, default=4)
    ap.add_argument("--design", default="paired_by_case")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="report directory (default: a temporary one)")
    a = ap.parse_args(argv)

    inner: dict[str, list[float]] = defaultdict(list)
    _instrument(inner)
    stages: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    tables = make_trial_tables(design=a.design, n_cases=a.cases, n_readers=a.readers, n_experts=a.experts,
                               n_centers=a.centers, seed=a.seed)
    stages.append(("simulate tables (not part of the analysis)", time.perf_counter() - t0))
    manifest = {"trial": "BENCH", "design": a.design, "arms_masked": False, "assisted_arm": "ai_assisted",
                "preference_majority": a.experts // 2 + 1, "code_version": "benchmark", "data_sha256": "-"}
    t0 = time.perf_counter()
    results = pipeline.analyse_results(tables, manifest)
    stages.append(("analyse (analyse_trial + flow)", time.perf_counter() - t0))
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    t0 = time.perf_counter()
    render_report(results, tables, manifest, out)
    stages.append(("report (6 figures, HTML x2, JSON)", time.perf_counter() - t0))

    sizes = ", ".join(f"{k} {len(v):,}" for k, v in tables.items())
    print(f"Simulated trial: {a.cases:,} cases, {a.readers} readers, {a.experts} experts, {a.centers} centers "
          f"({a.design}); rows: {sizes}")
    print(f"{'stage':50} {'seconds':>9}")
    for name, s in stages:
        print(f"{name:50} {s:9.2f}")
    print(f"{'total analysis + report':50} {stages[1][1] + stages[2][1]:9.2f}")
    print(f"\nInside analyse ({'calls':>5}, seconds):")
    for name, times in sorted(inner.items(), key=lambda kv: -sum(kv[1])):
        if sum(times) >= 0.01:
            print(f"  {name:46} {len(times):5d} {sum(times):9.2f}")
    truth = TrialScenario(design=a.design, n_cases=a.cases, n_readers=a.readers, n_experts=a.experts,
                          n_centers=a.centers).truths()
    q, t = results.primary.quality, results.primary.reading_time
    print(f"\nprimary quality difference {q.estimate:.3f} (true {truth['quality']}), "
          f"CI {q.ci[0]:.3f}-{q.ci[1]:.3f}; time ratio {t.estimate:.3f} (true {truth['reading_time']}), "
          f"CI {t.ci[0]:.3f}-{t.ci[1]:.3f}; report in {out}")


if __name__ == "__main__":
    main()
