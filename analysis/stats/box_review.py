"""The readers' decisions on the AI's boxes (issue 21 item 1): per finding, how often readers accepted a box, and,
where the reference standard exists, how often the finding was present in the cases whose boxes readers accepted
and in those whose boxes they rejected. Pure: pandas in, a dataclass out.

Input: the export's ``box_reviews`` table (one row per AI box a read showed: ``read_id``, ``case_code``, ``finding``,
``decision`` accepted / rejected / empty for undecided, ``submitted`` 1/0; after lock only) and the ``cases`` table
(``ref_<finding>``: 1 present, 0 absent, empty unknown). Only submitted reads count (a row without ``submitted``
counts). A box without a finding is counted under ``""`` in the totals and as its own row.

- acceptance: accepted / (accepted + rejected): undecided boxes are left out of the rate and counted on their own;
- accepted_present: of the accepted boxes whose case has a reference for the box's finding, the share where the
  finding is present (how often an accepted box pointed at something there: the box's positive predictive value as
  readers filtered it); rejected_present: the same for rejected boxes (a high value: readers threw away true
  findings).

Intervals are Clopper-Pearson on boxes, which are clustered by read, reader and case: descriptive.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from ._result import jsonable
from .interaction import Proportion

NOTE = "descriptive: intervals treat boxes as independent (they are clustered by read, reader and case)"


@dataclass(frozen=True)
class BoxFindingReview:
    """One finding's boxes (``finding`` "" : boxes naming no finding; "all": every box)."""

    finding: str
    shown: int
    accepted: int
    rejected: int
    undecided: int
    acceptance: Proportion  # accepted of the decided boxes
    accepted_present: Proportion  # finding present, of the accepted boxes with a reference
    rejected_present: Proportion  # finding present, of the rejected boxes with a reference


@dataclass
class BoxReviewResult:
    """The readers' decisions on the AI boxes, per finding and over all boxes."""

    n_reads: int
    findings: list[BoxFindingReview]
    overall: BoxFindingReview | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _reference(boxes: pd.DataFrame, cases: pd.DataFrame) -> pd.Series:
    """Per box row: the case's reference for the box's finding (1.0, 0.0, or NaN when unknown)."""
    if cases is None or cases.empty or "case_code" not in cases:
        return pd.Series(float("nan"), index=boxes.index)
    ref = cases.set_index(cases["case_code"].astype(str))
    out = pd.Series(float("nan"), index=boxes.index)
    for finding, rows in boxes.groupby("finding"):
        col = f"ref_{finding}"
        if finding and col in ref:
            values = pd.to_numeric(ref[col], errors="coerce")
            out.loc[rows.index] = values.reindex(rows["case_code"].astype(str)).to_numpy()
    return out


def _summary(finding: str, g: pd.DataFrame, conf_level: float) -> BoxFindingReview:
    acc, rej = g["decision"] == "accepted", g["decision"] == "rejected"
    known = g["reference"].notna()
    present = g["reference"] == 1
    return BoxFindingReview(
        finding=finding, shown=len(g), accepted=int(acc.sum()), rejected=int(rej.sum()),
        undecided=int((~acc & ~rej).sum()),
        acceptance=Proportion.of(int(acc.sum()), int((acc | rej).sum()), conf_level),
        accepted_present=Proportion.of(int((acc & known & present).sum()), int((acc & known).sum()), conf_level),
        rejected_present=Proportion.of(int((rej & known & present).sum()), int((rej & known).sum()), conf_level))


def box_review_summary(boxes: pd.DataFrame | None, cases: pd.DataFrame | None,
                       conf_level: float = 0.95) -> BoxReviewResult:
    """Acceptance per finding and the reference standard of accepted vs rejected boxes (module docstring)."""
    if boxes is None or boxes.empty or "decision" not in boxes:
        return BoxReviewResult(0, [], None, ["no AI boxes shown (the table comes with the export after lock)"])
    b = boxes.copy()
    if "submitted" in b:
        b = b[pd.to_numeric(b["submitted"], errors="coerce").fillna(0) > 0]
    if b.empty:
        return BoxReviewResult(0, [], None, ["no submitted read showed an AI box"])
    b["finding"] = b["finding"].fillna("").astype(str) if "finding" in b else ""
    b["decision"] = b["decision"].fillna("").astype(str)
    b["reference"] = _reference(b, cases if cases is not None else pd.DataFrame())
    rows = [_summary(str(f), g, conf_level) for f, g in b.groupby("finding", sort=True)]
    return BoxReviewResult(n_reads=int(b["read_id"].nunique()) if "read_id" in b else 0, findings=rows,
                           overall=_summary("all", b, conf_level), notes=[NOTE])
