"""Calibration of the primary tests (issue 13 item 8): type-I error and 95% CI coverage by simulation.

For each design (paired-by-case, case-randomised, crossover) and size (the published trial: 296 cases, 20 readers,
3 centers, 5 experts; a small one: 120 cases, 8 readers, 2 centers), trials are simulated with
:mod:`analysis.stats.synthetic` (the one trial model: readers nested or crossed as the design says, reader / case /
report / expert effects, preferences driven by perceived quality with ties) under the null (no arm effect) and
under the published effects, and analysed by :func:`analysis.stats.primary.primary_analysis`.

Printed per test: the rejection rate (type-I error under the null, power under the effect) and the coverage of the
95% CI of the true value, each with a Clopper-Pearson 95% Monte-Carlo interval. A row is flagged ``<<`` when the
nominal value (5% under the null, 95% coverage) lies outside that interval. The case-level paired t-tests that the
platform used to put first are shown for comparison (they ignore readers; descriptive only).

Usage: .venv/bin/python benchmarks/calibration.py [--sims N] [--designs paired_by_case,crossover]
       [--sizes published,small] [--truths null,effect] [--jobs N] [--seed N] [--csv FILE]
       .venv/bin/python benchmarks/calibration.py --from-csv run1.csv run2.csv   (pool runs made with other seeds)
Default: 100 trials per cell (minutes on 2 cores for paired-by-case; crossover at the published size is slower).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats.power import (  # noqa: E402
    CASE_LEVEL_TESTS,
    PRIMARY_TESTS,
    SENSITIVITY_TESTS,
    RejectionRate,
    simulate_outcomes,
    summarise,
    truths_for,
)
from analysis.stats.synthetic import DESIGNS, TrialScenario  # noqa: E402

SIZES = {"published": {"n_cases": 296, "n_readers": 20, "n_centers": 3},
         "small": {"n_cases": 120, "n_readers": 8, "n_centers": 2}}
ORDER = [*PRIMARY_TESTS, *SENSITIVITY_TESTS, *CASE_LEVEL_TESTS]
HEADER = (f"{'design':16} {'size':9} {'truth':6} {'test':26} {'reject':>6} {'MC 95% interval':>16} "
          f"{'cover':>6} {'MC 95% interval':>16} {'mean est':>9} {'true':>7} {'nc':>4} {'fb':>4} {'fail':>4}")


def _fmt_ci(ci: tuple[float | None, float | None] | None) -> str:
    if not ci or ci[0] is None:
        return f"{'-':>16}"
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]".rjust(16)


def _flag(t: RejectionRate, null: bool, alpha: float) -> str:
    flags = []
    if null and t.ci[0] is not None and not t.ci[0] <= alpha <= t.ci[1]:
        flags.append("type-I")
    if t.coverage_ci is not None and t.coverage_ci[0] is not None and not t.coverage_ci[0] <= 0.95 <= t.coverage_ci[1]:
        flags.append("coverage")
    return ("<< " + ", ".join(flags)) if flags else ""


def _num(v: float | None, width: int, digits: int) -> str:
    return f"{v:{width}.{digits}f}" if v is not None else f"{'-':>{width}}"


def _row(design: str, size: str, null: bool, t: RejectionRate, alpha: float) -> str:
    num = _num
    return (f"{design:16} {size:9} {'null' if null else 'effect':6} {t.test:26} {t.power:6.3f} {_fmt_ci(t.ci)} "
            f"{num(t.coverage, 6, 3)} {_fmt_ci(t.coverage_ci)} {num(t.mean_estimate, 9, 4)} {num(t.truth, 7, 4)} "
            f"{t.n_not_converged:4d} {t.n_fallback:4d} {t.n_failed:4d} {_flag(t, null, alpha)}")


def run_cell(sc: TrialScenario, sims: int, seed: int, jobs: int, permutations: int, alpha: float
             ) -> tuple[dict[str, RejectionRate], pd.DataFrame, float]:
    t0 = time.perf_counter()
    out = simulate_outcomes(sc, sims, seed=seed, n_permutations=permutations, jobs=jobs)
    return summarise(out, sims, truths_for(sc), alpha), out, time.perf_counter() - t0


def _print_cell(design: str, size: str, null: bool, res: dict[str, RejectionRate], sims: int, alpha: float) -> int:
    """Print one design x size x truth block; returns how many primary-test rows were flagged."""
    n_flags = 0
    for name in [t for t in ORDER if t in res]:
        if res[name].n_failed == sims and design == "case_randomised":
            continue  # no pairs of reports, so no preference (docs/design.md section 2)
        line = _row(design, size, null, res[name], alpha)
        n_flags += name not in CASE_LEVEL_TESTS and "<<" in line
        print(line, flush=True)
    return n_flags


def summarise_csv(paths: list[str], alpha: float) -> int:
    """Pool saved outcomes (``--csv`` of several runs with different seeds) and print the table again."""
    frames = []
    for k, path in enumerate(paths):
        f = pd.read_csv(path, keep_default_na=False, na_values=[""])  # "null" is a truth label here
        frames.append(f.assign(sim=f["sim"].astype(str) + f"-{k}"))
    allr = pd.concat(frames)
    n_flags = 0
    print(HEADER)
    for (design, size, truth), g in allr.groupby(["design", "size", "truth"], sort=False):
        sc = TrialScenario(design=design, **SIZES[size])
        sc = sc.null() if truth == "null" else sc
        sims = g["sim"].nunique()
        n_flags += _print_cell(design, size, truth == "null", summarise(g, sims, truths_for(sc), alpha), sims, alpha)
        print(f"{'':16} ({sims} trials)")
    print(f"\n{n_flags} primary-test row(s) flagged.")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=100, help="simulated trials per design x size x null/effect")
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--truths", default="null,effect", help="null, effect or both")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--permutations", type=int, default=0,
                    help="also run the reader randomisation test (sensitivity) with this many permutations")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--csv", help="write every simulated trial's estimates, CIs and p-values here")
    ap.add_argument("--from-csv", nargs="+", help="print the table of saved --csv outcomes (pooled), simulate nothing")
    a = ap.parse_args(argv)
    if a.from_csv:
        return summarise_csv(a.from_csv, a.alpha)

    print(f"Calibration of the primary tests: {a.sims} simulated trials per row; reject = share with p < "
          f"{a.alpha}; cover = share of 95% CIs holding the true value; intervals: Clopper-Pearson 95% (Monte "
          f"Carlo); nc = fits not converged, fb = fallback used, fail = no p; << = nominal value outside the "
          f"interval. *_case_paired_t: the old case-level tests, descriptive only.\n")
    print(HEADER)
    frames, n_flags = [], 0
    for design in a.designs.split(","):
        for size in a.sizes.split(","):
            base = TrialScenario(design=design, **SIZES[size])
            for truth in a.truths.split(","):
                null = truth == "null"
                sc = base.null() if null else base
                res, out, secs = run_cell(sc, a.sims, a.seed + (0 if null else 1), a.jobs, a.permutations, a.alpha)
                n_flags += _print_cell(design, size, null, res, a.sims, a.alpha)
                print(f"{'':16} ({secs:.0f} s, {secs / a.sims:.2f} s per trial)", flush=True)
                frames.append(out.assign(design=design, size=size, truth=truth))
    if a.csv:
        pd.concat(frames).to_csv(a.csv, index=False)
    print(f"\n{n_flags} primary-test row(s) flagged.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

