"""Coverage of the ratio realised with the drawn reader effects by the case-level paired geometric-mean-ratio CI.

tests/analysis_app/test_simulation.py checks, in one simulated paired-by-case trial, that the descriptive
case-level CI of the reading-time ratio covers ``exp(log(time_ratio) + mean over cases of (reader_t[assisted reader]
- reader_t[control reader]))``. This repeats that check over many trials of the same size with the simulator's own
model (analysis/stats/synthetic.py: ``log_seconds``), so a formula that did not match the model would show up as
coverage below 95%.

Usage: .venv/bin/python benchmarks/realised_ratio_coverage.py [--sims 2000] [--seed 1]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats import synthetic as syn  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sc = syn.TrialScenario(design="paired_by_case", n_cases=120, n_readers=8, n_centers=2, n_experts=3,
                           time_ratio=0.82, sd_log_reader=0.1).validate()  # the test's trial
    rng = np.random.default_rng(a.seed)
    cover = 0
    for _ in range(a.sims):
        case_center = np.arange(sc.n_cases) % sc.n_centers
        reader_center, reader_arm = syn._reader_arms(sc, rng)
        plan = syn._plan_reads(sc, case_center, reader_center, reader_arm, rng)
        eff = syn.draw_effects(sc, rng)
        case, reader, arm = (plan[k].to_numpy() for k in ("case", "reader", "arm"))
        log_t = syn.log_seconds(sc, case, reader, arm, eff, rng)
        by_arm = {}
        for k in (0, 1):
            sel = arm == k
            lt, rd = np.zeros(sc.n_cases), np.zeros(sc.n_cases, dtype=int)
            lt[case[sel]], rd[case[sel]] = log_t[sel], reader[sel]
            by_arm[k] = (lt, rd)
        log_diff = by_arm[1][0] - by_arm[0][0]
        realised = math.log(sc.time_ratio) + float(np.mean(eff.reader_t[by_arm[1][1]] - eff.reader_t[by_arm[0][1]]))
        ci = stats.ttest_1samp(log_diff, 0.0).confidence_interval(0.95)
        cover += ci.low <= realised <= ci.high
    p = cover / a.sims
    half = 1.96 * math.sqrt(p * (1 - p) / a.sims)
    print(f"coverage of the realised ratio: {p:.4f} ({p - half:.4f}-{p + half:.4f}), {a.sims} trials")


if __name__ == "__main__":
    main()
