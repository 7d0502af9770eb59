"""Simulated quality ratings of the three trial designs, for checking analysis/stats/lmm.py against lme4.

Each row is one expert's score of one report. Scores are continuous (the model is Gaussian; rounding to 1-5 would
only add noise). Effects: reader, case, report (reader x case [x arm]), expert, residual; a fixed arm effect and
center effects. Experts: each report is scored by 3-5 of a panel of 5, so report sizes differ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SD = {"reader": 0.3, "case": 0.5, "report": 0.4, "expert": 0.25, "residual": 0.6}


@dataclass(frozen=True)
class Trial:
    y: np.ndarray
    X: pd.DataFrame  # noqa: N815
    groups: dict[str, np.ndarray]

    def to_csv(self, path) -> None:  # noqa: ANN001
        """The layout tests/analysis/r/lmer_fit.R reads: y, f_<fixed>, g_<factor>."""
        df = pd.DataFrame({"y": self.y})
        for c in self.X.columns:
            df[f"f_{c}"] = self.X[c].to_numpy()
        for k, v in self.groups.items():
            df[f"g_{k}"] = v
        df.to_csv(path, index=False, float_format="%.17g")


def _reads(design: str, n_cases: int, n_readers: int, n_centers: int, rng: np.random.Generator) -> pd.DataFrame:
    """One row per read: reader, case, arm (1 = AI-assisted), center."""
    case_center = rng.integers(0, n_centers, n_cases)
    reader_center = np.arange(n_readers) % n_centers
    if design == "paired_by_case":  # readers nested in arms; each case read once per arm by a reader of its center
        reader_arm = (np.arange(n_readers) // n_centers) % 2
        rows = []
        for c in range(n_cases):
            for arm in (0, 1):
                pool = np.flatnonzero((reader_center == case_center[c]) & (reader_arm == arm))
                rows.append((rng.choice(pool), c, arm))
        reads = pd.DataFrame(rows, columns=["reader", "case", "arm"])
    elif design == "crossover":  # every reader reads every case in both arms
        r, c, a = np.meshgrid(np.arange(n_readers), np.arange(n_cases), (0, 1), indexing="ij")
        reads = pd.DataFrame({"reader": r.ravel(), "case": c.ravel(), "arm": a.ravel()})
    elif design == "case_randomised":  # each case one arm, read by every reader of its center
        case_arm = rng.permutation(np.arange(n_cases) % 2)
        rows = [(r, c, case_arm[c]) for c in range(n_cases) for r in np.flatnonzero(reader_center == case_center[c])]
        reads = pd.DataFrame(rows, columns=["reader", "case", "arm"])
    else:
        raise ValueError(design)
    reads["center"] = case_center[reads["case"]]
    return reads


def simulate(design: str, n_cases: int = 60, n_readers: int = 8, n_centers: int = 2, seed: int = 1,
             effect: float = 0.2, sd: dict[str, float] | None = None, experts: tuple[int, int] = (3, 5)) -> Trial:
    """Simulate one trial of ``design``; X = intercept, arm, center dummies (first center the reference)."""
    sd = {**SD, **(sd or {})}
    rng = np.random.default_rng(seed)
    reads = _reads(design, n_cases, n_readers, n_centers, rng)
    reads["report"] = np.arange(len(reads))
    n_experts = 5
    take = rng.integers(experts[0], experts[1] + 1, len(reads))
    rows = [(i, e) for i, k in enumerate(take) for e in rng.choice(n_experts, k, replace=False)]
    long = pd.DataFrame(rows, columns=["read", "expert"]).join(reads, on="read")
    center_effect = np.linspace(0, 0.3, n_centers)
    eff = {k: rng.normal(0, sd[k], m) for k, m in
           (("reader", n_readers), ("case", n_cases), ("report", len(reads)), ("expert", n_experts))}
    y = (3.0 + effect * long["arm"].to_numpy() + center_effect[long["center"].to_numpy()]
         + sum(eff[k][long[k].to_numpy()] for k in eff) + rng.normal(0, sd["residual"], len(long)))
    x = pd.DataFrame({"intercept": 1.0, "arm": long["arm"].astype(float)})
    for c in range(1, n_centers):
        x[f"center{c}"] = (long["center"] == c).astype(float)
    groups = {k: long[k].to_numpy() for k in ("reader", "case", "report", "expert")}
    return Trial(y=np.asarray(y, dtype=float), X=x, groups=groups)
