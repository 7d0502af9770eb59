"""Coverage and type-I error of the split-plot / nested-reader OR analysis (analysis/stats/mrmc_split.py).

Null paired-by-case trials (readers nested in arms and centers, each case read once per arm at its center,
``--missing`` of the reads dropped at random) are simulated with ``simulate_split_plot_reads``; the 95% CI of the AUC
difference should cover 0 about 95% of the time. Prints coverage with a Monte-Carlo 95% interval, the mean ddf and the
ratio of the mean estimated variance to the empirical variance of the difference.

Usage: .venv/bin/python benchmarks/mrmc_nested.py [--sims 2000] [--seed 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats.mrmc_split import simulate_split_plot_reads, split_plot_mrmc  # noqa: E402

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


def run(name: str, params: dict, sims: int, rng: np.random.Generator) -> None:
    cover, est, var, dfs, t0 = 0, [], [], [], time.perf_counter()
    for _ in range(sims):
        r = split_plot_mrmc(simulate_split_plot_reads(rng, **params), ["A", "B"])
        if r is None:  # an arm without 2 usable readers (a reader with < 2 positive cases): not analysable
            continue
        cover += r.ci[0] <= 0.0 <= r.ci[1]
        est.append(r.estimate)
        var.append(r.se**2)
        dfs.append(r.df)
    p = cover / len(est)
    half = 1.96 * np.sqrt(p * (1 - p) / len(est))
    print(f"{name}: coverage {p:.3f} ({p - half:.3f}-{p + half:.3f}), type-I error {1 - p:.3f}, "
          f"median ddf {np.median(dfs):.1f}, mean var / empirical var {np.mean(var) / np.var(est):.3f}, "
          f"{time.perf_counter() - t0:.0f} s")


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
