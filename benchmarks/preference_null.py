"""Why the primary preference test is model-based: type-I error of three preference tests on null trials.

Paired-by-case trials without an arm effect (analysis.stats.synthetic: readers nested in arms within center, reader /
case / report effects, experts prefer the report they perceive as better, ties) are analysed by

- naive permutation: readers' arm labels permuted within center, the assisted report of each case re-derived from
  its readers' new labels (cases whose two readers land in one arm contribute 0), statistic = share of "at least k
  prefer assisted" minus its null share;
- primary: the declared analysis (analysis.stats.primary.preference_primary), mixed model on the pair-level excess
  h_assisted - h_control with reader random intercepts, Satterthwaite df;
- reader randomisation: the opt-in sensitivity test of the primary (least-squares reader strengths, labels
  permuted within center).

The permutations do not follow the randomisation (a case compares one reader of each arm; relabelled, half of the
cases have two readers of one arm), so their type-I error depends on how much readers differ; results in
docs/primary_analysis.md.

Usage: .venv/bin/python benchmarks/preference_null.py [--sims 200] [--permutations 500] [--readers 8] [--cases 120]
       [--centers 2] [--sd-reader SD]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats.primary import preference_frame, preference_primary  # noqa: E402
from analysis.stats.synthetic import TrialScenario, make_trial_tables  # noqa: E402

ARMS = {"assisted": "ai_assisted", "control": "unassisted"}


def naive_permutation_p(u, n_permutations: int, rng: np.random.Generator) -> float:
    readers = sorted(set(u["reader_assisted"]) | set(u["reader_control"]))
    index = {r: i for i, r in enumerate(readers)}
    ia = u["reader_assisted"].map(index).to_numpy()
    ic = u["reader_control"].map(index).to_numpy()
    label = np.zeros(len(readers))
    label[np.unique(ia)] = 1.0
    center = dict(zip(u["reader_assisted"], u["center"], strict=False)) | dict(
        zip(u["reader_control"], u["center"], strict=False))
    d = ((u["h"] - u["h_control"]) / 2).to_numpy()
    perms = np.tile(label, (n_permutations + 1, 1))
    for c in set(center.values()):
        idx = np.array([index[r] for r in readers if center[r] == c])
        perms[1:, idx] = rng.permuted(perms[1:, idx], axis=1)
    stat = ((perms[:, ia] - perms[:, ic]) * d).mean(axis=1)  # +-1 orientation per case, 0 when concordant
    return float((1 + np.sum(np.abs(stat[1:]) >= abs(stat[0]) - 1e-12)) / (1 + n_permutations))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--permutations", type=int, default=500)
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--cases", type=int, default=120)
    ap.add_argument("--centers", type=int, default=2)
    ap.add_argument("--sd-reader", type=float, default=None, help="reader SD on the quality scale (default: the "
                                                                    "simulator's)")
    a = ap.parse_args()
    extra = {} if a.sd_reader is None else {"sd_reader": a.sd_reader}
    sc = TrialScenario(n_cases=a.cases, n_readers=a.readers, n_centers=a.centers, **extra).null()
    rows = []
    t0 = time.perf_counter()
    for i in range(a.sims):
        rng = np.random.default_rng([7, i])
        tables = make_trial_tables(scenario=sc, rng=rng)
        u = preference_frame(tables, ARMS["assisted"], ARMS["control"], sc.k)
        res = preference_primary(tables, design="paired_by_case", majority_k=sc.k, **ARMS,
                                 n_permutations=a.permutations, rng=rng)
        rows.append((naive_permutation_p(u, a.permutations, rng), res.p, res.details.randomisation_test.p))
    ps = np.array(rows, dtype=float)
    print(f"{a.sims} null paired-by-case trials, {a.cases} cases, {a.readers} readers, {a.centers} centers, "
          f"reader SD {sc.sd_reader}, k = {sc.k} "
          f"({time.perf_counter() - t0:.0f} s)")
    for j, name in enumerate(("naive reader-label permutation", "primary (mixed model, Satterthwaite)",
                              "reader randomisation (sensitivity)")):
        k = int(np.sum(ps[:, j] < 0.05))
        ci = stats.binomtest(k, a.sims).proportion_ci(method="exact")
        print(f"  {name:40s} type-I error {k / a.sims:.3f} (95% MC CI {ci.low:.3f}-{ci.high:.3f})")


if __name__ == "__main__":
    main()
