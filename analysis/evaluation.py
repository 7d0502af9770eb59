"""Evaluating the AI as the reporting guidelines ask (issue 20), from the export tables (no Django): the arena
ranking of the arms from the experts' pairwise judgements, the human-AI interaction per read, and report-text
metrics against the reference report. ``pipeline.analyse`` puts :func:`ai_evaluation`'s dict under
``results['ai_evaluation']``; the statistics themselves live in analysis/stats (bradley_terry, interaction,
text_metrics).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from .stats import jsonable
from .stats.box_review import BoxReviewResult, box_review_summary
from .stats.bradley_terry import ArenaRanking, arena_ranking, comparisons_from_ratings
from .stats.interaction import InteractionResult, interaction_analysis
from .stats.text_metrics import METEOR_VARIANT, PairedComparison, paired_randomisation

METRICS = ("bleu", "rouge_l", "meteor")


@dataclass
class TextMetricsSummary:
    """Mean BLEU / ROUGE-L / METEOR of final reports per arm and of drafts, and paired comparisons by approximate
    randomisation: assisted vs control final reports (per-case means, cases read in both arms) and, over reads that
    showed a draft, the final report vs the draft."""

    final_by_arm: dict[str, dict[str, Any]]
    drafts: dict[str, Any]
    comparisons: list[PairedComparison]
    meteor_variant: str = METEOR_VARIANT
    notes: list[str] = field(default_factory=list)


@dataclass
class AIEvaluation:
    arena: ArenaRanking | None
    interaction: InteractionResult
    text_metrics: TextMetricsSummary
    #: the readers' accept/reject decisions on the AI boxes (issue 21 item 1; after lock only)
    box_review: BoxReviewResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _num(t: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(t[col], errors="coerce") if col in t else pd.Series(float("nan"), index=t.index)


def _means(t: pd.DataFrame, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"n": int(_num(t, f"{prefix}bleu").notna().sum())}
    for m in METRICS:
        v = _num(t, f"{prefix}{m}")
        out[m] = float(v.mean()) if v.notna().any() else None
    return out


def text_metrics_summary(reads: pd.DataFrame, drafts: pd.DataFrame, assisted: str | None, control: str | None,
                         n_shuffles: int = 10000, seed: int = 0) -> TextMetricsSummary:
    if "submitted" in reads:
        reads = reads[pd.to_numeric(reads["submitted"], errors="coerce").fillna(0) > 0]
    notes = []
    if reads.empty or "bleu" not in reads:
        notes.append("no text metrics in the export (no reference reports, or an older export)")
        return TextMetricsSummary({}, {}, [], notes=notes)
    by_arm = {str(a): _means(g) for a, g in reads.groupby(reads["arm"].astype(str))}
    comparisons = []
    if assisted and control:
        for m in METRICS:
            per_case = (reads.assign(v=_num(reads, m)).groupby([reads["case_code"].astype(str),
                                                                 reads["arm"].astype(str)])["v"].mean().unstack())
            if {assisted, control} <= set(per_case.columns):
                comparisons.append(paired_randomisation(per_case[assisted], per_case[control], metric=m,
                                                        label_a=f"final {assisted}", label_b=f"final {control}",
                                                        n_shuffles=n_shuffles, seed=seed))
    if "draft_bleu" in reads:
        for m in METRICS:
            comparisons.append(paired_randomisation(_num(reads, m), _num(reads, f"draft_{m}"), metric=m,
                                                    label_a="final report", label_b="draft shown",
                                                    n_shuffles=n_shuffles, seed=seed))
    else:
        notes.append("draft-vs-final comparison needs the draft columns, exported after lock")
    return TextMetricsSummary(by_arm, _means(drafts) if not drafts.empty else {},
                              [c for c in comparisons if c.n], notes=notes)


def ai_evaluation(tables: dict[str, pd.DataFrame], assisted: str | None, control: str | None,
                  n_bootstrap: int = 500, seed: int = 0) -> AIEvaluation:
    """All parts on the analysis set (``pipeline.prepare_tables``' output)."""
    reads = tables.get("reads", pd.DataFrame())
    cases = tables.get("cases", pd.DataFrame())
    comparisons = comparisons_from_ratings(tables.get("ratings", pd.DataFrame()))
    arena = None
    if len(comparisons) and comparisons[["left", "right"]].stack().nunique() >= 2:
        ref = control if control in set(comparisons["left"]) | set(comparisons["right"]) else None
        arena = arena_ranking(comparisons, reference=ref, n_bootstrap=n_bootstrap, seed=seed)
    return AIEvaluation(
        arena=arena,
        interaction=interaction_analysis(reads, cases, str(assisted), control),
        text_metrics=text_metrics_summary(reads, tables.get("drafts", pd.DataFrame()), assisted, control, seed=seed),
        box_review=box_review_summary(tables.get("box_reviews"), cases),
    )
