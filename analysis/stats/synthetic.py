"""Synthetic export tables in the schema of :mod:`analysis.stats.trial` (for tests, demos and power checks)."""
from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_FINDINGS = ("pleural_effusion", "pneumothorax", "atelectasis", "consolidation", "cardiomegaly",
                    "lung_opacity")


def make_trial_tables(
    design: str = "paired_by_case",
    n_cases: int = 90,
    n_readers: int = 6,
    n_experts: int = 5,
    n_centers: int = 3,
    quality_effect: float = 0.3,
    time_ratio: float = 0.8,
    p_prefer_assisted: float = 0.6,
    p_tie: float = 0.1,
    findings: tuple[str, ...] = DEFAULT_FINDINGS,
    assisted_arm: str = "ai_assisted",
    control_arm: str = "unassisted",
    seed: int = 1,
) -> dict[str, pd.DataFrame]:
    """reads, ratings, drafts and cases tables for a simulated trial with known effects.

    paired_by_case: readers split between arms within center, each case read once per arm. case_randomised: each
    case in one arm. crossover: every reader reads every case in both arms.
    """
    rng = np.random.default_rng(seed)
    arms = [assisted_arm, control_arm]
    cases = pd.DataFrame({"case_code": [f"C{i:04d}" for i in range(n_cases)],
                          "center": [f"S{i % n_centers}" for i in range(n_cases)]})
    truth = {f: rng.random(n_cases) < 0.3 for f in findings}
    for f in findings:
        cases[f"ref_{f}"] = truth[f].astype(int)
    readers = [f"R{j:02d}" for j in range(n_readers)]
    reader_center = {r: f"S{j % n_centers}" for j, r in enumerate(readers)}
    reader_arm = {r: arms[(j // n_centers) % 2] for j, r in enumerate(readers)}
    experience = {r: ("senior" if j % 3 == 0 else "junior") for j, r in enumerate(readers)}
    r_q = {r: rng.normal(0, 0.15) for r in readers}
    r_t = {r: rng.normal(0, 0.1) for r in readers}
    case_q = rng.normal(0, 0.4, n_cases)
    case_t = rng.normal(0, 0.2, n_cases)

    plan: list[tuple[int, str, str]] = []  # (case index, arm, reader)
    for i, (_, row) in enumerate(cases.iterrows()):
        local = [r for r in readers if reader_center[r] == row.center] or readers
        if design == "crossover":
            plan += [(i, a, r) for r in readers for a in arms]
        elif design == "case_randomised":
            a = arms[rng.integers(0, 2)]
            plan.append((i, a, local[rng.integers(0, len(local))]))
        else:
            for a in arms:
                pool = [r for r in local if reader_arm[r] == a] or [r for r in readers if reader_arm[r] == a]
                plan.append((i, a, pool[rng.integers(0, len(pool))]))
    reads = []
    for k, (i, a, r) in enumerate(plan):
        assisted = a == assisted_arm
        secs = float(np.exp(np.log(140) + np.log(time_ratio) * assisted + case_t[i] + r_t[r] + rng.normal(0, 0.25)))
        row = {"read_id": f"RD{k:05d}", "case_code": cases.case_code[i], "center": cases.center[i], "reader": r,
               "reader_experience": experience[r], "arm": a, "active_seconds": round(secs, 1),
               "wall_seconds": round(secs * 1.3, 1)}
        for f in findings:
            acc = 0.85 if assisted else 0.75
            call = int(truth[f][i]) if rng.random() < acc else 1 - int(truth[f][i])
            row[f"finding_{f}"] = call
            row[f"confidence_{f}"] = int(rng.integers(1, 6))
        reads.append(row)
    reads_df = pd.DataFrame(reads)
    drafts = pd.DataFrame({"case_code": cases.case_code, "model_version": "janus-pro-cxr-1"})
    for f in findings:
        drafts[f"prob_{f}"] = np.round(1 / (1 + np.exp(-(rng.normal(0, 1, n_cases) + 2.0 * truth[f] - 1))), 4)
    experts = [f"E{j}" for j in range(n_experts)]
    ratings = []
    if design != "case_randomised":
        by_case = reads_df.groupby("case_code")
        k = 0
        for code, g in by_case:
            ga, gc = g[g.arm == assisted_arm], g[g.arm == control_arm]
            for (_, ra), (_, rc) in zip(ga.iterrows(), gc.iterrows(), strict=False):
                i = int(code[1:])
                for e in experts:
                    swap = rng.random() < 0.5
                    qa = float(np.clip(np.rint(4 + quality_effect + case_q[i] + r_q[ra.reader] + rng.normal(0, .5)),
                                       1, 5))
                    qc = float(np.clip(np.rint(4 + case_q[i] + r_q[rc.reader] + rng.normal(0, .5)), 1, 5))
                    u = rng.random()
                    pref = "none" if u < p_tie else ("assisted" if u < p_tie + (1 - p_tie) * p_prefer_assisted
                                                     else "control")
                    a_arm, b_arm = (control_arm, assisted_arm) if swap else (assisted_arm, control_arm)
                    letter = {"none": "none", "assisted": "B" if swap else "A", "control": "A" if swap else "B"}[pref]
                    ratings.append({"rating_id": f"RT{k:05d}", "case_code": code, "center": ra.center, "expert": e,
                                    "arm_a": a_arm, "arm_b": b_arm, "preference": letter,
                                    "quality_a": qc if swap else qa, "quality_b": qa if swap else qc})
                    k += 1
    return {"reads": reads_df, "ratings": pd.DataFrame(ratings), "drafts": drafts, "cases": cases}


def write_tables(tables: dict[str, pd.DataFrame], directory: str) -> None:
    """Write the tables as <name>.csv into ``directory``."""
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, t in tables.items():
        t.to_csv(d / f"{name}.csv", index=False)
