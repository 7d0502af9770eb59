"""A small simulator of reader-randomised trials for the primary-analysis tests (export-table schema).

Readers are randomised to arms within center (paired-by-case: nested in arms), every report is scored by every
expert, and experts prefer the report they score higher (ties when the scores are close), so preferences carry the
reader and case clustering that the primary analysis must respect.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def simulate(design: str = "paired_by_case", *, n_cases: int = 120, n_readers: int = 8, n_experts: int = 5,
             n_centers: int = 2, quality_effect: float = 0.0, log_time_ratio: float = 0.0, reader_sd: float = 0.3,
             case_sd: float = 0.4, report_sd: float = 0.3, expert_sd: float = 0.2, time_reader_sd: float = 0.15,
             tie_band: float = 0.5, seed: int = 1, reader_columns: bool = True) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    arms = ("ai_assisted", "unassisted")
    readers = [f"R{j:02d}" for j in range(n_readers)]
    center_of = {r: f"S{j % n_centers}" for j, r in enumerate(readers)}
    arm_of = {}
    for c in range(n_centers):
        local = [r for r in readers if center_of[r] == f"S{c}"]
        labels = np.resize(np.array(arms), len(local))
        for r, a in zip(local, rng.permutation(labels), strict=True):
            arm_of[r] = str(a)
    r_q = dict(zip(readers, rng.normal(0, reader_sd, n_readers), strict=True))
    r_t = dict(zip(readers, rng.normal(0, time_reader_sd, n_readers), strict=True))
    experience = {r: ("senior" if j % 3 == 0 else "junior") for j, r in enumerate(readers)}
    e_q = rng.normal(0, expert_sd, n_experts)
    reads, ratings = [], []
    for i in range(n_cases):
        case, center = f"C{i:04d}", f"S{i % n_centers}"
        local = [r for r in readers if center_of[r] == center]
        cq, ct = rng.normal(0, case_sd), rng.normal(0, 0.2)
        if design == "crossover":
            plan = [(r, a) for r in local for a in arms]
        elif design == "case_randomised":
            plan = [(str(rng.choice(local)), str(rng.choice(arms)))]
        else:
            plan = [(str(rng.choice([r for r in local if arm_of[r] == a])), a) for a in arms]
        reports = []
        for r, a in plan:
            ai = a == arms[0]
            secs = float(np.exp(np.log(140) + log_time_ratio * ai + ct + r_t[r] + rng.normal(0, 0.3)))
            reads.append({"read_id": f"RD{len(reads):06d}", "case_code": case, "center": center, "reader": r,
                          "reader_experience": experience[r], "arm": a, "active_seconds": round(secs, 2)})
            reports.append((r, a, 3.6 + quality_effect * ai + cq + r_q[r] + rng.normal(0, report_sd)))
        if design == "case_randomised":  # one report per case: single-report quality ratings, no preference
            (r, a, q), = reports
            for e in range(n_experts):
                row = {"rating_id": f"RT{len(ratings):06d}", "case_code": case, "center": center, "expert": f"E{e}",
                       "arm_a": a, "arm_b": None, "preference": None,
                       "quality_a": float(np.clip(np.rint(q + e_q[e] + rng.normal(0, 0.4)), 1, 5)), "quality_b": None}
                if reader_columns:
                    row["reader_a"], row["reader_b"] = r, None
                ratings.append(row)
            continue
        pairs = [(x, y) for x in reports for y in reports if x[1] == arms[0] and y[1] == arms[1]
                 and (design != "crossover" or x[0] == y[0])]
        for (ra, aa, qa), (rc, ac, qc) in pairs:
            for e in range(n_experts):
                pa, pc = qa + e_q[e] + rng.normal(0, 0.4), qc + e_q[e] + rng.normal(0, 0.4)
                swap = rng.random() < 0.5
                d = pa - pc
                pref = "none" if abs(d) < tie_band else ("assisted" if d > 0 else "control")
                row = {"rating_id": f"RT{len(ratings):06d}", "case_code": case, "center": center, "expert": f"E{e}",
                       "arm_a": ac if swap else aa, "arm_b": aa if swap else ac,
                       "preference": {"none": "none", "assisted": "B" if swap else "A",
                                      "control": "A" if swap else "B"}[pref],
                       "quality_a": float(np.clip(np.rint(pc if swap else pa), 1, 5)),
                       "quality_b": float(np.clip(np.rint(pa if swap else pc), 1, 5))}
                if reader_columns:
                    row["reader_a"], row["reader_b"] = (rc, ra) if swap else (ra, rc)
                ratings.append(row)
    return {"reads": pd.DataFrame(reads), "ratings": pd.DataFrame(ratings)}
