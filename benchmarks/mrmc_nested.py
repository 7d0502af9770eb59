"""Coverage and type-I error of the split-plot / nested-reader OR analysis (analysis/stats/mrmc_split.py) and of
the Gallas U-statistic MRMC variance (analysis/stats/mrmc_ustat.py, iMRMC's method) on the same simulated trials.

Null paired-by-case trials (readers nested in arms and centers, each case read once per arm at its center,
``--missing`` of the reads dropped at random) are simulated with ``simulate_split_plot_reads``; the 95% CI of the AUC
difference should cover 0 about 95% of the time. Prints, per method, coverage with a Monte-Carlo 95% interval, the
median ddf and the ratio of the mean estimated variance to the empirical variance of the estimate; for the
U-statistic also the coverage with Welch's df on the reader mean squares alone (no shift) and with the normal
quantile (iMRMC's "Normal" columns), and how often its variance was not positive (fallback used).

Usage: .venv/bin/python benchmarks/mrmc_nested.py [--sims 2000] [--seed 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy import stats  # noqa: E402

from analysis.stats.mrmc_split import simulate_split_plot_reads, split_plot_mrmc  # noqa: E402
from analysis.stats.mrmc_ustat import ustat_mrmc  # noqa: E402

SCENARIOS = {
    "small: 2 centers x 60 cases, 4 readers per arm": {"n_centers": 2, "cases_per_center": 60,
                                                      "readers_per_arm_per_center": 2},
    "small, 15% of reads missing": {"n_centers": 2, "cases_per_center": 60, "readers_per_arm_per_center": 2,
                                    "missing": 0.15},
    "small, reader sd 0.8": {"n_centers": 2, "cases_per_center": 60, "readers_per_arm_per_center": 2,
                             "sd_reader": 0.8},
    "6 readers per arm, 120 cases": {"n_centers": 2, "cases_per_center": 60, "readers_per_arm_per_center": 3},
    "published size: 2 centers x 148 cases, 10 readers per arm": {"n_centers": 2, "cases_per_center": 148,
                                                                    "readers_per_arm_per_center": 5},
}


def _interval(hits: int, n: int) -> str:
    p = hits / n
    half = 1.96 * np.sqrt(p * (1 - p) / n)
    return f"{p:.3f} ({p - half:.3f}-{p + half:.3f})"


def _welch_df(r) -> float:
    parts = [np.var(list(a.reader_auc.values()), ddof=1) / a.n_readers for a in r.arms]
    return sum(parts) ** 2 / sum(p**2 / (a.n_readers - 1) for p, a in zip(parts, r.arms, strict=True))


def run(name: str, params: dict, sims: int, rng: np.random.Generator) -> None:
    t0 = time.perf_counter()
    cov = {"split": 0, "ustat": 0, "ustat_welch": 0, "ustat_normal": 0}
    est = {"split": [], "ustat": []}
    var = {"split": [], "ustat": []}
    dfs = {"split": [], "ustat": []}
    fallback = n = 0
    for _ in range(sims):
        d = simulate_split_plot_reads(rng, **params)
        s, u = split_plot_mrmc(d, ["A", "B"]), ustat_mrmc(d, ["A", "B"])
        if s is None or u is None:  # an arm without 2 usable readers: not analysable
            continue
        n += 1
        for key, r in (("split", s), ("ustat", u)):
            cov[key] += r.ci[0] <= 0.0 <= r.ci[1]
            est[key].append(r.estimate)
            var[key].append(r.se**2)
            dfs[key].append(r.df)
        q = stats.t.ppf(0.975, _welch_df(u))
        cov["ustat_welch"] += abs(u.estimate) <= q * u.se
        cov["ustat_normal"] += u.ci_normal[0] <= 0.0 <= u.ci_normal[1]
        fallback += u.variance_kind != "U-statistic"
    print(f"{name} ({n} trials, {time.perf_counter() - t0:.0f} s)")
    for key in ("split", "ustat"):
        print(f"  {key:6s} coverage {_interval(cov[key], n)}, median ddf {np.median(dfs[key]):.1f}, "
              f"mean var / empirical var {np.mean(var[key]) / np.var(est[key]):.3f}")
    print(f"  ustat with Welch df {_interval(cov['ustat_welch'], n)}, normal {_interval(cov['ustat_normal'], n)}, "
          f"variance fallback {fallback}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    for name, params in SCENARIOS.items():
        run(name, params, a.sims, rng)


if __name__ == "__main__":
    main()
