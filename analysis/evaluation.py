"""Evaluating the AI as the reporting guidelines ask (issue 20), from the export tables (no Django): the arena
ranking of the arms from the experts' pairwise judgements, the human-AI interaction per read, and report-text
metrics against the reference report. ``pipeline.analyse`` puts :func:`ai_evaluation`'s dict under
``results['ai_evaluation']``; the statistics themselves live in analysis/stats (bradley_terry, interaction,
text_metrics).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .stats import jsonable
from .stats.box_review import BoxReviewResult, box_review_summary
from .stats.bradley_terry import ArenaRanking, arena_ranking, comparisons_from_ratings
from .stats.chexbert_f1 import (
    CONDITIONS,
    ChexbertSummary,
    binary_matrix,
    chexbert_f1,
    paired_f1_randomisation,
    slug,
    unit_counts,
)
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
    #: CheXbert-F1 (model-based; local weights only): :func:`chexbert_summary`
    chexbert: ChexbertSummary = field(default_factory=lambda: ChexbertSummary(False, NO_WEIGHTS))


@dataclass
class DraftArena:
    """The standalone arena (issue 20 item 1; docs/ai-evaluation.md, "Standalone arena"): ``ranking`` of the model
    versions by Davidson's Bradley-Terry with ties, position bias and tie rate (None with fewer than two versions
    judged); ``flow`` the export manifest's arena flow (versions, cases, tasks, drafts left out by reason)."""

    ranking: ArenaRanking | None
    n_judgements: int
    flow: dict[str, Any] | None = None


@dataclass
class AIEvaluation:
    arena: ArenaRanking | None
    interaction: InteractionResult
    text_metrics: TextMetricsSummary
    #: the readers' accept/reject decisions on the AI boxes (issue 21 item 1; after lock only)
    box_review: BoxReviewResult | None = None
    #: the standalone arena (issue 20 item 1; after lock only): model versions ranked from the experts' judgements
    #: of their drafts, without readers (:func:`draft_arena`)
    draft_arena: DraftArena | None = None

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


NO_WEIGHTS = "not computed: no local weights (CHEXBERT_WEIGHTS_DIR or analyze --chexbert-weights)"
CHEXBERT_STATISTICS = (("micro", False), ("macro", False), ("micro", True), ("macro", True))


def _labelled(t: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    return t[_num(t, f"{prefix}chexbert_labelled").fillna(0) > 0] if f"{prefix}chexbert_labelled" in t else t.iloc[0:0]


def _label_rows(t: pd.DataFrame, prefix: str = "") -> list[list]:
    cols = [f"{prefix}chexbert_{slug(c)}" for c in CONDITIONS]
    return t.reindex(columns=cols).to_numpy(dtype=object).tolist()


def _case_counts(t: pd.DataFrame, refs: dict[str, list], prefix: str = "") -> dict[str, np.ndarray]:
    """Per case, the (14, 3) TP/FP/FN counts of its labelled reports summed over its reads."""
    out: dict[str, np.ndarray] = {}
    for code, g in t.groupby(t["case_code"].astype(str)):
        if code in refs:
            truth = binary_matrix([refs[code]] * len(g))
            out[code] = unit_counts(truth, binary_matrix(_label_rows(g, prefix))).sum(axis=0)
    return out


def _f1_comparisons(a: np.ndarray, b: np.ndarray, label_a: str, label_b: str, n_shuffles: int, seed: int) -> list:
    return [paired_f1_randomisation(a, b, statistic=st, five=five, label_a=label_a, label_b=label_b,
                                    n_shuffles=n_shuffles, seed=seed) for st, five in CHEXBERT_STATISTICS]


def chexbert_summary(reads: pd.DataFrame, drafts: pd.DataFrame, cases: pd.DataFrame, assisted: str | None,
                     control: str | None, text_models: dict | None = None, n_shuffles: int = 10000,
                     seed: int = 0) -> ChexbertSummary:
    """CheXbert-F1 (f1chexbert's definitions; analysis/stats/chexbert_f1.py) of the final reports per arm and of
    the drafts against the reference reports' labels, and paired approximate randomisation: assisted vs control
    final reports over cases read in both (a case's reads pooled), and final report vs the draft shown over reads."""
    info = (text_models or {}).get("chexbert") or {}
    ref_rows = _labelled(cases)
    if ref_rows.empty:
        reason = (f"not computed: the local weights did not load ({info['error']})" if info.get("error")
                  else NO_WEIGHTS if not info else "not computed: no reference report was labelled")
        return ChexbertSummary(False, reason, weights=info)
    refs = dict(zip(ref_rows["case_code"].astype(str), _label_rows(ref_rows), strict=True))

    def score(t: pd.DataFrame, prefix: str = ""):
        t = _labelled(t, prefix)
        t = t[t["case_code"].astype(str).isin(refs)]
        return chexbert_f1([refs[c] for c in t["case_code"].astype(str)], _label_rows(t, prefix)) if len(t) else None

    if "submitted" in reads:
        reads = reads[_num(reads, "submitted").fillna(0) > 0]
    if not {"arm", "case_code"} <= set(reads.columns):
        reads = pd.DataFrame(columns=["arm", "case_code"])
    by_arm = {str(a): r for a, g in reads.groupby(reads["arm"].astype(str)) if (r := score(g)) is not None}
    comparisons = []
    if assisted and control:
        arm = reads["arm"].astype(str)
        ca = _case_counts(_labelled(reads[arm == str(assisted)]), refs)
        cc = _case_counts(_labelled(reads[arm == str(control)]), refs)
        both = sorted(set(ca) & set(cc))
        if both:
            comparisons += _f1_comparisons(np.stack([ca[c] for c in both]), np.stack([cc[c] for c in both]),
                                           f"final {assisted}", f"final {control}", n_shuffles, seed)
    pairs = _labelled(_labelled(reads), "draft_")
    pairs = pairs[pairs["case_code"].astype(str).isin(refs)]
    if "draft_shown" in pairs:  # a draft withheld as out of distribution was not shown
        pairs = pairs[_num(pairs, "draft_shown").fillna(1) > 0]
    if len(pairs):
        truth = binary_matrix([refs[c] for c in pairs["case_code"].astype(str)])
        comparisons += _f1_comparisons(unit_counts(truth, binary_matrix(_label_rows(pairs))),
                                       unit_counts(truth, binary_matrix(_label_rows(pairs, "draft_"))),
                                       "final report", "draft shown", n_shuffles, seed)
    return ChexbertSummary(True, weights=info, final_by_arm=by_arm,
                           drafts=score(drafts) if not drafts.empty and "case_code" in drafts else None,
                           comparisons=comparisons)


def text_metrics_summary(reads: pd.DataFrame, drafts: pd.DataFrame, assisted: str | None, control: str | None,
                         n_shuffles: int = 10000, seed: int = 0, cases: pd.DataFrame | None = None,
                         text_models: dict | None = None) -> TextMetricsSummary:
    if "submitted" in reads:
        reads = reads[pd.to_numeric(reads["submitted"], errors="coerce").fillna(0) > 0]
    notes = []
    chexbert = chexbert_summary(reads, drafts, cases if cases is not None else pd.DataFrame(), assisted, control,
                                text_models, n_shuffles=n_shuffles, seed=seed)
    if reads.empty or "bleu" not in reads:
        notes.append("no text metrics in the export (no reference reports, or an older export)")
        return TextMetricsSummary({}, {}, [], notes=notes, chexbert=chexbert)
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
                              [c for c in comparisons if c.n], notes=notes, chexbert=chexbert)


def arena_comparisons(arena: pd.DataFrame | None) -> pd.DataFrame:
    """The arena table (A on the left, preference A, B or tie) as bradley_terry comparisons over model versions."""
    if arena is None or arena.empty or "preference" not in arena:
        return comparisons_from_ratings(pd.DataFrame())
    t = arena.assign(preference=arena["preference"].astype(str).replace({"tie": "none"}))
    return comparisons_from_ratings(t, item_a="model_a", item_b="model_b")


def draft_arena(arena: pd.DataFrame | None, flow: dict[str, Any] | None = None, n_bootstrap: int = 500,
                seed: int = 0) -> DraftArena | None:
    """The standalone arena's section; None when the export has no arena table (before lock, or no arena)."""
    if arena is None or arena.empty:
        return DraftArena(None, 0, flow) if flow else None
    comparisons = arena_comparisons(arena)
    ranking = None
    if len(comparisons) and comparisons[["left", "right"]].stack().nunique() >= 2:
        ranking = arena_ranking(comparisons, n_bootstrap=n_bootstrap, seed=seed)
    return DraftArena(ranking, len(comparisons), flow)


def ai_evaluation(tables: dict[str, pd.DataFrame], assisted: str | None, control: str | None,
                  n_bootstrap: int = 500, seed: int = 0, text_models: dict | None = None,
                  arena_flow: dict[str, Any] | None = None) -> AIEvaluation:
    """All parts on the analysis set (``pipeline.prepare_tables``' output); ``text_models``: the manifest's
    record of the local text-model weights (CheXbert); ``arena_flow``: the manifest's arena counts."""
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
        text_metrics=text_metrics_summary(reads, tables.get("drafts", pd.DataFrame()), assisted, control, seed=seed,
                                          cases=cases, text_models=text_models),
        box_review=box_review_summary(tables.get("box_reviews"), cases),
        draft_arena=draft_arena(tables.get("arena"), arena_flow, n_bootstrap=n_bootstrap, seed=seed),
    )


# -- Error analysis (CONSORT-AI 19, issue 20 item 3) ----------------------------------------------------------------

KEPT, CORRECTED, NOT_SUBMITTED = "kept the error", "corrected", "not submitted"
OUTCOME_KEYS = {KEPT: "kept", CORRECTED: "corrected", NOT_SUBMITTED: "not_submitted"}


@dataclass(frozen=True)
class DraftErrorRow:
    """One finding call of a draft shown to a reader that the reference standard says is wrong, and what the reader
    did with it; ``unassisted`` counts the control-arm reads of the same case and finding that were right."""

    case_code: str
    finding: str
    arm: str
    reader: str
    truth: int
    draft_call: int
    error: str  # false positive / false negative
    reader_call: int | None
    outcome: str  # kept the error / corrected / not submitted
    unassisted_right: int
    unassisted_reads: int


@dataclass(frozen=True)
class FailedDraftRow:
    """A draft that failed (timed out, refused, errored) and what happened to the reads of its case: in the AI
    arms after lock (read without a draft, read with a draft after a retry, not submitted), over all arms before."""

    case_code: str
    model_version: str
    failure: str
    reads: dict[str, int]


@dataclass
class ErrorAnalysis:
    """The error listing for expert review. ``draft_errors`` is empty while the arms are masked (the drafts'
    calls per read name the AI arm); the failed drafts are listed either way, their reads counted over all arms
    before lock."""

    masked: bool
    draft_errors: list[DraftErrorRow]
    by_finding: dict[str, dict[str, int]]
    failed_drafts: list[FailedDraftRow]
    failures_by_kind: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _call(v: Any) -> int | None:
    x = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
    return None if pd.isna(x) else int(x > 0)


def _truths(cases: pd.DataFrame, findings: list[str]) -> dict[tuple[str, str], int]:
    out = {}
    if cases.empty or "case_code" not in cases:
        return out
    for f in findings:
        col = f"ref_{f}"
        if col in cases:
            for code, v in zip(cases["case_code"].astype(str), cases[col], strict=True):
                c = _call(v)
                if c is not None:
                    out[(code, f)] = c
    return out


def _draft_error_rows(reads: pd.DataFrame, truth: dict[tuple[str, str], int], findings: list[str],
                      control: str | None) -> list[DraftErrorRow]:
    submitted = (_num(reads, "submitted").fillna(0) > 0 if "submitted" in reads
                 else reads["status"].astype(str) == "done")
    shown = _num(reads, "draft_shown").fillna(1) > 0 if "draft_shown" in reads else pd.Series(True, index=reads.index)
    ctl = reads[(reads["arm"].astype(str) == str(control)) & submitted] if control else reads.iloc[0:0]
    rows = []
    for f in findings:
        if f"draft_{f}" not in reads:
            continue
        with_draft = reads[shown & _num(reads, f"draft_{f}").notna()]
        for _, r in with_draft.iterrows():
            key = (str(r["case_code"]), f)
            t, d = truth.get(key), _call(r[f"draft_{f}"])
            if t is None or d is None or d == t:
                continue
            done = bool(submitted.loc[r.name])
            rc = _call(r.get(f"finding_{f}")) if done else None
            outcome = NOT_SUBMITTED if rc is None else KEPT if rc == d else CORRECTED
            c = ctl[ctl["case_code"].astype(str) == key[0]]
            calls = [_call(v) for v in c.get(f"finding_{f}", pd.Series(dtype=object))]
            rows.append(DraftErrorRow(key[0], f, str(r["arm"]), str(r.get("reader", "") or ""), t, d,
                                      "false positive" if d else "false negative", rc, outcome,
                                      sum(x == t for x in calls if x is not None),
                                      sum(x is not None for x in calls)))
    return rows


def _by_finding(rows: list[DraftErrorRow]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        d = out.setdefault(r.finding, {"errors": 0, "false_positive": 0, "false_negative": 0, "kept": 0,
                                       "corrected": 0, "not_submitted": 0})
        d["errors"] += 1
        d["false_positive" if r.draft_call else "false_negative"] += 1
        d[OUTCOME_KEYS[r.outcome]] += 1
    return out


def _failed_draft_rows(drafts: pd.DataFrame, reads: pd.DataFrame, ai_arms: list[str], masked: bool
                       ) -> list[FailedDraftRow]:
    if drafts.empty or "status" not in drafts:
        return []
    failed = drafts[drafts["status"].astype(str) == "failed"]
    rows = []
    for _, d in failed.iterrows():
        code = str(d["case_code"])
        r = reads[reads["case_code"].astype(str) == code] if "case_code" in reads else reads
        if not masked and "arm" in r:
            r = r[r["arm"].astype(str).isin(ai_arms)]
        counts: dict[str, int] = {}
        for _, x in r.iterrows():
            if str(x.get("status", "")) != "done":
                what = NOT_SUBMITTED
            elif masked:
                what = "submitted"
            else:
                what = "read with a draft (after a retry)" if _call(x.get("draft_shown")) else "read without a draft"
            counts[what] = counts.get(what, 0) + 1
        rows.append(FailedDraftRow(code, str(d.get("model_version", "")), str(d.get("failure", "") or "error")
                                   if "failure" in d else "not exported", counts))
    return rows


def error_analysis(raw: dict[str, pd.DataFrame], analysis_set: dict[str, pd.DataFrame], findings: list[str],
                   ai_arms: list[str], control: str | None, masked: bool) -> ErrorAnalysis:
    """Draft errors per finding by the reference standard and what the readers did with them (after lock), and
    the failed drafts with what happened to their cases' reads. ``raw``: the export tables (failed drafts and
    unsubmitted reads are not in the analysis set); ``analysis_set``: ``pipeline.prepare_tables``' output."""
    reads = analysis_set.get("reads", pd.DataFrame())
    notes = []
    rows: list[DraftErrorRow] = []
    if masked:
        notes.append("after lock: the drafts' calls per read are withheld while the arms are masked")
    elif reads.empty or not any(f"draft_{f}" in reads for f in findings):
        notes.append("no draft calls in the export")
    else:
        rows = _draft_error_rows(reads, _truths(analysis_set.get("cases", pd.DataFrame()), findings), findings,
                                 control)
    raw_drafts = raw.get("drafts", pd.DataFrame())
    raw_reads = raw.get("reads", pd.DataFrame())
    excluded = set()
    cases = raw.get("cases", pd.DataFrame())
    if not cases.empty and "status" in cases:
        excluded = set(cases.loc[cases["status"].astype(str) == "excluded", "case_code"].astype(str))
    if not raw_drafts.empty and "case_code" in raw_drafts:
        raw_drafts = raw_drafts[~raw_drafts["case_code"].astype(str).isin(excluded)]
    failed = _failed_draft_rows(raw_drafts, raw_reads, ai_arms, masked)
    kinds: dict[str, int] = {}
    for f in failed:
        kinds[f.failure] = kinds.get(f.failure, 0) + 1
    return ErrorAnalysis(masked=masked, draft_errors=rows, by_finding=_by_finding(rows), failed_drafts=failed,
                         failures_by_kind=kinds, notes=notes)
