"""Human-AI interaction per read (CONSORT-AI 5(iv)-(vi)): what the reader did with the AI draft.

Input is the export's reads table (docs of analysis/stats/trial.py) with, per finding, ``finding_<code>`` (the
reader's final call, 1/0) and ``draft_<code>`` (the AI's call shown in that read: 1 when the draft's probability was at
least the draft threshold, 0 below it, empty when the read showed no draft), ``reader_position`` (1 = the reader's
first submitted read), and the cases table's ``ref_<code>`` (reference standard) for accuracy.

Terms, per read and finding where the draft gave a call:
- suggested: the AI called the finding present ("pre-filled"); kept: suggested and the reader kept it present;
  removed: suggested and the reader marked it absent; added: the AI called it absent and the reader marked it present.
- override rate per finding: P(reader absent | AI present) and P(reader present | AI absent).
- automation bias: the reader's accuracy against the reference standard when the AI was right and when it was wrong,
  beside the accuracy of the unassisted arm's reads of the same cases and findings (the AI call for those comes from
  the draft shown in the case's AI reads).

Intervals are Clopper-Pearson on reader-finding calls, which are clustered by reader and case: descriptive.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from ._result import jsonable
from .proportions import clopper_pearson

DESCRIPTIVE_NOTE = ("descriptive: intervals treat reader-finding calls as independent (they are clustered by reader "
                    "and case)")


def _codes(reads: pd.DataFrame, prefix: str) -> list[str]:
    return [c[len(prefix):] for c in reads.columns if str(c).startswith(prefix)]


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


@dataclass(frozen=True)
class Proportion:
    """k of n with its Clopper-Pearson interval."""

    k: int
    n: int
    rate: float | None
    ci: tuple[float | None, float | None] | None

    @classmethod
    def of(cls, k: int, n: int, conf_level: float = 0.95) -> Proportion:
        return cls(int(k), int(n), (k / n) if n else None, clopper_pearson(k, n, conf_level) if n else None)


def per_read_changes(reads: pd.DataFrame) -> pd.DataFrame:
    """One row per read that showed a draft: read_id, reader, case_code, arm, suggested, kept, removed, added,
    unchanged (findings whose call the reader left as the AI's), n_calls (findings with both calls), and
    text_edited (the final text differs from the draft: draft_edit_distance > 0) when that column exists."""
    findings = [c for c in _codes(reads, "draft_") if f"finding_{c}" in reads]
    cols = ["read_id", "reader", "case_code", "arm", "suggested", "kept", "removed", "added", "unchanged", "n_calls"]
    if reads.empty or not findings:
        return pd.DataFrame(columns=cols)
    ai = pd.DataFrame({c: _num(reads[f"draft_{c}"]) for c in findings})
    rd = pd.DataFrame({c: _num(reads[f"finding_{c}"]) for c in findings})
    shown = ai.notna().any(axis=1)
    both = ai.notna() & rd.notna()
    out = pd.DataFrame({k: reads[k] for k in ("read_id", "reader", "case_code", "arm") if k in reads})
    out["suggested"] = ((ai == 1) & both).sum(axis=1)
    out["kept"] = ((ai == 1) & (rd == 1) & both).sum(axis=1)
    out["removed"] = ((ai == 1) & (rd == 0) & both).sum(axis=1)
    out["added"] = ((ai == 0) & (rd == 1) & both).sum(axis=1)
    out["unchanged"] = ((ai == rd) & both).sum(axis=1)
    out["n_calls"] = both.sum(axis=1)
    if "draft_edit_distance" in reads:
        dist = _num(reads["draft_edit_distance"])
        out["edit_distance"] = dist
        out["text_edited"] = (dist > 0).astype(float).where(dist.notna())
    return out[shown].reset_index(drop=True)


@dataclass
class FindingOverride:
    """Per finding: how often readers overrode the AI's call, in each direction."""

    finding: str
    ai_present_reader_absent: Proportion  # of the reads where the AI called it present
    ai_absent_reader_present: Proportion  # of the reads where the AI called it absent


@dataclass
class AccuracyCell:
    """Reader accuracy (call == reference) on (case, finding) cells where the AI was right, or wrong."""

    ai_correct: bool
    assisted: Proportion
    unassisted: Proportion  # the unassisted arm's reads of the same cells
    difference: float | None  # assisted - unassisted


@dataclass
class LearningCurve:
    """Outcome by position in each reader's sequence, per arm: means per position bin and the within-reader slope
    per 10 reads (OLS on reader-demeaned data, SE clustered by reader)."""

    outcome: str
    bins: list[dict[str, Any]]
    slopes: dict[str, dict[str, float | None]]


@dataclass
class InteractionResult:
    """Human-AI interaction measures of a trial (see the module docstring)."""

    n_reads_with_draft: int
    totals: dict[str, int]
    per_read_means: dict[str, float | None]
    overrides: list[FindingOverride]
    automation_bias: list[AccuracyCell]
    learning_curves: list[LearningCurve]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def override_rates(reads: pd.DataFrame, conf_level: float = 0.95) -> list[FindingOverride]:
    """Per finding, among reads that showed a draft: P(reader absent | AI present), P(reader present | AI absent)."""
    out = []
    for c in _codes(reads, "draft_"):
        if f"finding_{c}" not in reads:
            continue
        ai, rd = _num(reads[f"draft_{c}"]), _num(reads[f"finding_{c}"])
        ok = ai.notna() & rd.notna()
        pres, absn = ok & (ai == 1), ok & (ai == 0)
        out.append(FindingOverride(
            c, Proportion.of(int((pres & (rd == 0)).sum()), int(pres.sum()), conf_level),
            Proportion.of(int((absn & (rd == 1)).sum()), int(absn.sum()), conf_level)))
    return out


def _long_calls(reads: pd.DataFrame, cases: pd.DataFrame, findings: list[str]) -> pd.DataFrame:
    """(read, finding) rows with the reader's call, the AI call shown (if any) and the reference."""
    ref = cases.set_index(cases["case_code"].astype(str)) if "case_code" in cases else pd.DataFrame()
    parts = []
    for c in findings:
        p = pd.DataFrame({"read_id": reads.get("read_id", pd.Series(reads.index, index=reads.index)),
                          "case_code": reads["case_code"].astype(str), "arm": reads["arm"].astype(str),
                          "finding": c, "reader_call": _num(reads[f"finding_{c}"]),
                          "ai_call": _num(reads[f"draft_{c}"]) if f"draft_{c}" in reads else np.nan})
        p["reference"] = (_num(ref[f"ref_{c}"]).reindex(p["case_code"]).to_numpy()
                          if f"ref_{c}" in ref else np.nan)
        parts.append(p)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def automation_bias(reads: pd.DataFrame, cases: pd.DataFrame, assisted_arm: str, control_arm: str | None,
                    conf_level: float = 0.95) -> list[AccuracyCell]:
    """Reader accuracy when the AI was right vs wrong, in the assisted arm and in the control arm on the same cells.

    The AI's call for a (case, finding) cell is the one shown in the case's assisted reads (they share one draft per
    model version; the first is taken if several differ). Cells without a reference or an AI call are left out."""
    findings = [c for c in _codes(reads, "draft_") if f"finding_{c}" in reads]
    long = _long_calls(reads, cases, findings)
    if long.empty:
        return []
    long = long[long["reference"].notna() & long["reader_call"].notna()]
    ai_cells = (long[(long["arm"] == str(assisted_arm)) & long["ai_call"].notna()]
                .groupby(["case_code", "finding"])["ai_call"].first())
    long = long.join(ai_cells.rename("cell_ai"), on=["case_code", "finding"])
    long = long[long["cell_ai"].notna()]
    long["correct"] = long["reader_call"] == long["reference"]
    long["ai_correct"] = long["cell_ai"] == long["reference"]
    out = []
    for right in (True, False):
        sub = long[long["ai_correct"] == right]
        a = sub[sub["arm"] == str(assisted_arm)]
        u = sub[sub["arm"] == str(control_arm)] if control_arm is not None else sub.iloc[0:0]
        pa = Proportion.of(int(a["correct"].sum()), len(a), conf_level)
        pu = Proportion.of(int(u["correct"].sum()), len(u), conf_level)
        diff = pa.rate - pu.rate if pa.rate is not None and pu.rate is not None else None
        out.append(AccuracyCell(right, pa, pu, diff))
    return out


def read_accuracy(reads: pd.DataFrame, cases: pd.DataFrame) -> pd.Series:
    """Per read: share of findings called as the reference standard says (findings without a reference skipped)."""
    findings = _codes(reads, "finding_")
    long = _long_calls(reads, cases, findings)
    if long.empty:
        return pd.Series(np.nan, index=reads.index)
    long = long[long["reference"].notna() & long["reader_call"].notna()]
    acc = (long["reader_call"] == long["reference"]).groupby(long["read_id"]).mean()
    ids = reads["read_id"] if "read_id" in reads else pd.Series(reads.index, index=reads.index)
    return pd.Series(acc.reindex(ids).to_numpy(), index=reads.index, dtype=float)


def learning_curve(reads: pd.DataFrame, outcome: pd.Series, name: str, n_bins: int = 5) -> LearningCurve:
    """``outcome`` (one value per read) by ``reader_position``: means per arm in ``n_bins`` equal-width bins of
    position, and per arm the within-reader slope per 10 reads with an SE clustered by reader."""
    if reads.empty or "reader_position" not in reads:
        return LearningCurve(name, [], {})
    d = pd.DataFrame({"arm": reads["arm"].astype(str), "reader": reads["reader"].astype(str),
                      "pos": _num(reads["reader_position"]), "y": _num(outcome)}).dropna()
    if d.empty:
        return LearningCurve(name, [], {})
    edges = np.linspace(d["pos"].min() - 0.5, d["pos"].max() + 0.5, n_bins + 1)
    d["bin"] = pd.cut(d["pos"], edges, labels=False, include_lowest=True)
    bins = []
    for (arm, b), g in d.groupby(["arm", "bin"]):
        bins.append({"arm": arm, "bin": int(b) + 1, "from": float(np.ceil(edges[int(b)])),
                     "to": float(np.floor(edges[int(b) + 1])), "n": len(g), "mean": float(g["y"].mean())})
    slopes: dict[str, dict[str, float | None]] = {}
    for arm, g in d.groupby("arm"):
        g = g.assign(yc=g["y"] - g.groupby("reader")["y"].transform("mean"),
                     xc=(g["pos"] - g.groupby("reader")["pos"].transform("mean")) / 10)
        if g["xc"].abs().sum() == 0 or g["reader"].nunique() < 2:
            slopes[arm] = {"per_10_reads": None, "se": None, "p": None, "n_reads": len(g)}
            continue
        fit = smf.ols("yc ~ 0 + xc", data=g).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(g["reader"])[0]})
        slopes[arm] = {"per_10_reads": float(fit.params["xc"]), "se": float(fit.bse["xc"]),
                       "p": float(fit.pvalues["xc"]), "n_reads": len(g)}
    return LearningCurve(name, bins, slopes)


def _shown_only(reads: pd.DataFrame) -> pd.DataFrame:
    """Blank the draft's calls of reads that did not show their draft (``draft_shown`` 0: withheld as out of
    distribution), so nothing counts them as suggestions the reader saw. Exports without the column pass."""
    if "draft_shown" not in reads:
        return reads
    hidden = _num(reads["draft_shown"]) == 0
    reads = reads.copy()
    for c in _codes(reads, "draft_"):
        if f"finding_{c}" in reads:
            reads.loc[hidden, f"draft_{c}"] = np.nan
    return reads


def interaction_analysis(reads: pd.DataFrame, cases: pd.DataFrame, assisted_arm: str, control_arm: str | None,
                         conf_level: float = 0.95) -> InteractionResult:
    """All interaction measures for the submitted reads of a trial."""
    if reads is None or reads.empty:
        return InteractionResult(0, {}, {}, [], [], [], ["no reads"])
    if "submitted" in reads:
        reads = reads[_num(reads["submitted"]).fillna(0) > 0]
    reads = _shown_only(reads.reset_index(drop=True))
    changes = per_read_changes(reads)
    notes = [DESCRIPTIVE_NOTE]
    if changes.empty:
        notes.append("no read showed a draft with finding calls (export before lock withholds them)")
    totals = {k: int(changes[k].sum()) for k in ("suggested", "kept", "removed", "added", "unchanged", "n_calls")} \
        if not changes.empty else {}
    means = {k: (float(changes[k].mean()) if not changes.empty and k in changes else None)
             for k in ("suggested", "kept", "removed", "added", "edit_distance", "text_edited")}
    curves = []
    if not cases.empty:
        curves.append(learning_curve(reads, read_accuracy(reads, cases), "accuracy"))
    if "active_seconds" in reads:
        curves.append(learning_curve(reads, np.log(_num(reads["active_seconds"]).where(lambda s: s > 0)),
                                     "log active seconds"))
    return InteractionResult(
        n_reads_with_draft=len(changes), totals=totals, per_read_means=means,
        overrides=override_rates(reads, conf_level),
        automation_bias=automation_bias(reads, cases, assisted_arm, control_arm, conf_level) if not cases.empty else [],
        learning_curves=[c for c in curves if c.bins], notes=notes)
