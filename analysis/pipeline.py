"""From export tables to the results dict (no Django): the analysis set, the CONSORT flow and the primary analysis.

The Django side writes the export, reads the CSVs back and calls :func:`analyse`, so every number in a report can be
reproduced from the export directory alone (``python -m analysis trial EXPORT_DIR`` runs the same statistics on the
same analysis set when the tables hold only analysable rows; :func:`analyse_export` here also applies the filters).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from .evaluation import AIEvaluation, ErrorAnalysis, ai_evaluation, error_analysis
from .stats._result import UNSET, Section
from .stats.arms import arms_from_manifest
from .stats.multiarm import MultiArmPrimary, multi_arm_primary
from .stats.primary import PrimaryDetails
from .stats.sections import TrialResults
from .stats.trial import analyse_trial, read_export_dir


def _t(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    t = tables.get(name)
    return t.copy() if isinstance(t, pd.DataFrame) else pd.DataFrame()


def _excluded_codes(cases: pd.DataFrame) -> set[str]:
    if cases.empty or "status" not in cases or "case_code" not in cases:
        return set()
    return set(cases.loc[cases["status"].astype(str) == "excluded", "case_code"].astype(str))


def _enrolled_mask(cases: pd.DataFrame) -> pd.Series:
    m = pd.Series(True, index=cases.index)
    if "enrolled" in cases:
        m &= pd.to_numeric(cases["enrolled"], errors="coerce").fillna(0) > 0
    if "status" in cases:
        m &= cases["status"].astype(str) != "excluded"
    return m


def prepare_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The analysis set, by rules that depend on the export alone.

    - cases: enrolled and not excluded;
    - reads: of those cases; ``submitted`` = 1 when status is done (the statistics count the others as excluded);
    - ratings: submitted (status done) ratings of those cases;
    - drafts: ready drafts of those cases;
    - box_reviews (after lock): the AI boxes shown in reads of those cases;
    - arena (after lock): the standalone arena's submitted judgements of those cases.
    Tables without status columns (e.g. the synthetic ones) pass through unchanged.
    """
    cases = _t(tables, "cases")
    keep: set[str] | None = None
    if not cases.empty and "case_code" in cases:
        cases["case_code"] = cases["case_code"].astype(str)
        cases = cases[_enrolled_mask(cases)]
        keep = set(cases["case_code"])
    out: dict[str, pd.DataFrame] = {"cases": cases}
    for name in ("reads", "ratings", "drafts", "allocations", "box_reviews", "arena"):
        t = _t(tables, name)
        if keep is not None and "case_code" in t:
            t = t[t["case_code"].astype(str).isin(keep)]
        if name == "reads" and "status" in t and "submitted" not in t:
            t = t.assign(submitted=(t["status"].astype(str) == "done").astype(int))
        if name in ("ratings", "arena") and "status" in t:
            t = t[t["status"].astype(str) == "done"]
        if name == "drafts" and "status" in t:
            t = t[t["status"].astype(str) == "ready"]
        out[name] = t.reset_index(drop=True)
    return out


@dataclass(frozen=True)
class ArmConsort(Section):
    """One arm's box of the flow diagram: readers and cases randomised to it, cases assigned, reads (submitted or
    not) and the cases read."""

    readers_allocated: int
    cases_allocated: int
    cases_assigned: int
    reads: int
    reads_submitted: int
    reads_not_submitted: int
    cases_read: int


@dataclass(frozen=True)
class OODFlow(Section):
    """Cases whose AI draft was out of distribution (inference/backends/ood.py): marked or withheld (a case counts
    as withheld when any of its drafts was), and how often each reason occurred, per case."""

    cases_marked: int = 0
    cases_withheld: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Consort(Section):
    """Counts for the CONSORT-style flow diagram, from the raw (unfiltered) export tables."""

    cases_registered: int
    cases_not_enrolled: int
    cases_excluded: int
    exclusion_reasons: dict[str, int]
    cases_enrolled: int
    by_arm: dict[str, ArmConsort]
    rating_tasks: int
    ratings_submitted: int
    ratings_not_submitted: int
    cases_rated: int
    drafts_out_of_distribution: OODFlow
    #: Files the import refused, by reason (manifest ``import_refusals``; issue 20): before the cases registered
    files_refused: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Labels(Section):
    """The arm labels a report shows, and whether they are masked (X/Y, direction unknown)."""

    assisted: str
    control: str | None
    masked: bool

    def shown(self) -> tuple[str, str]:
        """The names a report prints for the arms (placeholders when an arm is missing)."""
        return str(self.assisted or "assisted"), str(self.control or "control")


@dataclass(frozen=True)
class AnalysisResults(TrialResults):
    """:class:`~analysis.stats.sections.TrialResults` on the analysis set, plus the report's arm ``labels``, the
    ``consort`` flow and the export's ``manifest`` (the keys that describe the data). ``to_dict()`` is
    ``results.json``."""

    labels: Labels
    consort: Consort
    ai_evaluation: AIEvaluation
    manifest: dict[str, Any]
    #: Trials with two or more AI arms (issue 20): the declared primary analysis, each AI arm vs control
    #: (:mod:`analysis.stats.multiarm`); None with one AI arm or while the arms are masked.
    multi_arm: MultiArmPrimary | None = None
    #: Draft errors by the reference standard and what readers did with them (after lock), failed drafts and
    #: their reads (issue 20; :func:`analysis.evaluation.error_analysis`)
    error_analysis: ErrorAnalysis | None = None


def consort_flow(tables: dict[str, pd.DataFrame], arms: list[str], refusals: dict[str, int] | None = None) -> Consort:
    """Counts for the CONSORT-style diagram, from the raw (unfiltered) export tables; ``refusals``: the files the
    import refused, by reason (the manifest's ``import_refusals``)."""
    cases, reads, ratings = _t(tables, "cases"), _t(tables, "reads"), _t(tables, "ratings")
    allocations = _t(tables, "allocations")
    n_cases = len(cases)
    excluded = _excluded_codes(cases)
    reasons: dict[str, int] = {}
    if excluded:
        ex = cases[cases["case_code"].astype(str).isin(excluded)]
        col = ex["exclusion_reason"].fillna("").astype(str) if "exclusion_reason" in ex else pd.Series("", ex.index)
        for r in col.replace("", "no reason recorded"):
            reasons[r] = reasons.get(r, 0) + 1
    enrolled = int(_enrolled_mask(cases).sum()) if n_cases else 0
    not_enrolled = n_cases - enrolled - len(excluded)
    if not reads.empty and "case_code" in reads:
        reads = reads[~reads["case_code"].astype(str).isin(excluded)]
    if not ratings.empty and "case_code" in ratings:
        ratings = ratings[~ratings["case_code"].astype(str).isin(excluded)]
    done = (reads["status"].astype(str) == "done") if "status" in reads else pd.Series(True, index=reads.index)
    by_arm: dict[str, ArmConsort] = {}
    for arm in arms:
        ra = reads[reads["arm"].astype(str) == arm] if "arm" in reads else reads.iloc[0:0]
        da = ra[done.loc[ra.index]] if len(ra) else ra
        alloc_readers = alloc_cases = 0
        if not allocations.empty and {"unit_type", "arm"} <= set(allocations.columns):
            al = allocations[allocations["arm"].astype(str) == arm]
            alloc_readers = int((al["unit_type"] == "reader").sum())
            alloc_cases = int((al["unit_type"] == "case").sum())
        by_arm[arm] = ArmConsort(
            readers_allocated=alloc_readers,
            cases_allocated=alloc_cases,
            cases_assigned=int(ra["case_code"].nunique()) if len(ra) else 0,
            reads=len(ra),
            reads_submitted=len(da),
            reads_not_submitted=len(ra) - len(da),
            cases_read=int(da["case_code"].nunique()) if len(da) else 0,
        )
    rated_done = ratings[ratings["status"].astype(str) == "done"] if "status" in ratings else ratings
    return Consort(
        cases_registered=n_cases,
        cases_not_enrolled=max(0, not_enrolled),
        cases_excluded=len(excluded),
        exclusion_reasons=reasons,
        cases_enrolled=enrolled,
        by_arm=by_arm,
        rating_tasks=len(ratings),
        ratings_submitted=len(rated_done),
        ratings_not_submitted=len(ratings) - len(rated_done),
        cases_rated=int(rated_done["case_code"].nunique()) if len(rated_done) else 0,
        drafts_out_of_distribution=ood_flow(_t(tables, "drafts"), excluded),
        files_refused={str(k): int(v) for k, v in sorted((refusals or {}).items())},
    )


def ood_flow(drafts: pd.DataFrame, excluded: set[str] | list[str] = ()) -> OODFlow:
    """Drafts whose input was out of distribution (inference/backends/ood.py), for the CONSORT flow: cases with a
    draft marked or withheld, and how often each reason occurred (per case, excluded cases left out). A case counts
    as withheld when any of its drafts was."""
    if drafts.empty or "ood_action" not in drafts:
        return OODFlow()
    d = drafts[~drafts["case_code"].astype(str).isin(set(excluded))]
    action = d["ood_action"].astype(object).fillna("").astype(str)
    flagged = d[action != ""]
    per_case: dict[str, tuple[str, set[str]]] = {}
    why_col = flagged["ood_reasons"] if "ood_reasons" in flagged else pd.Series("", index=flagged.index)
    for case, act, why in zip(flagged["case_code"].astype(str), flagged["ood_action"].astype(str),
                              why_col.fillna("").astype(str), strict=True):
        prev_act, prev_why = per_case.get(case, ("", set()))
        worst = "withheld" if "withheld" in (prev_act, act) else "marked"
        per_case[case] = (worst, prev_why | {r for r in why.split(";") if r})
    reasons: dict[str, int] = {}
    for _act, why in per_case.values():
        for r in sorted(why):
            reasons[r] = reasons.get(r, 0) + 1
    withheld = sum(act == "withheld" for act, _why in per_case.values())
    return OODFlow(cases_marked=len(per_case) - withheld, cases_withheld=withheld, reasons=reasons)


MANIFEST_KEYS = ("trial", "design", "status", "arms_masked", "assisted_arm", "ai_arms", "import_refusals", "findings",
                 "generated_at", "code_version", "data_sha256", "tables", "preference_majority", "expert_panel_size",
                 "arena")


def analyse_results(tables: dict[str, pd.DataFrame], manifest: dict, threshold: float = 0.5) -> AnalysisResults:
    """The statistics of :func:`~analysis.stats.trial.analyse_trial` on the analysis set, plus the arm labels, the
    CONSORT flow and the manifest."""
    asked = arms_from_manifest(manifest)
    design = manifest.get("design") or "paired_by_case"
    k = manifest.get("preference_majority")
    analysis_set = prepare_tables(tables)
    res = analyse_trial(analysis_set, design=design, assisted_arm=asked.assisted,
                        control_arm=asked.control, majority_k=int(k) if k else None, threshold=threshold)
    a, c = res.arms.assisted, res.arms.control
    trial = {f.name: getattr(res, f.name) for f in fields(TrialResults)}
    trial["warnings"] = list(asked.warnings) + list(res.warnings)
    multi = _multi_arm(analysis_set, manifest, design, c, int(k) if k else None)
    if multi is not None:
        trial["warnings"].append(
            f"{len(multi.arms)} AI arms: the declared primary analysis is each AI arm vs {c} (multi_arm, "
            f"{multi.rule}); the primary table shows {a} vs {c} at the unadjusted level, for reference")
    arms = [x for x in (a, c) if x] + [str(x) for x in res.arms.observed if str(x) not in (a, c)]
    return AnalysisResults(
        **trial,
        labels=Labels(assisted=a, control=c, masked=bool(manifest.get("arms_masked"))),
        consort=consort_flow(tables, arms, manifest.get("import_refusals")),
        ai_evaluation=ai_evaluation(analysis_set, a, c, text_models=manifest.get("text_models"),  # issue 20
                                    arena_flow=manifest.get("arena")),  # analysis/evaluation.py
        manifest={key: manifest.get(key) for key in MANIFEST_KEYS},
        multi_arm=multi,
        error_analysis=error_analysis(tables, analysis_set, list(res.findings), _ai_arms(manifest, a), c,
                                      masked=bool(manifest.get("arms_masked"))),
    )


def _ai_arms(manifest: dict, assisted: str | None) -> list[str]:
    named = [str(x) for x in manifest.get("ai_arms") or []]
    return named or ([str(assisted)] if assisted else [])


def _multi_arm(analysis_set: dict[str, pd.DataFrame], manifest: dict, design: str, control: str | None,
               majority_k: int | None) -> MultiArmPrimary | None:
    """Each AI arm vs control when the (unmasked) export names two or more AI arms (issue 20)."""
    ai_arms = [str(x) for x in manifest.get("ai_arms") or []]
    if manifest.get("arms_masked") or len(ai_arms) < 2 or not control:
        return None
    return multi_arm_primary(analysis_set, design=design, ai_arms=ai_arms, control=control, majority_k=majority_k)


def analyse(tables: dict[str, pd.DataFrame], manifest: dict, threshold: float = 0.5) -> dict[str, Any]:
    """:func:`analyse_results` as the JSON-able results dict (``results.json``; the first key is ``primary``)."""
    return analyse_results(tables, manifest, threshold).to_dict()


def analyse_export(path: str | Path) -> dict[str, Any]:
    """Read an export directory (CSVs + manifest.json) and analyse it: the reproducible path."""
    path = Path(path)
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").exists() else {}
    return analyse(read_export_tables(path), manifest)


def read_export_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """The four analysis tables plus allocations.csv and (after lock) box_reviews.csv and arena.csv."""
    tables = read_export_dir(path)
    # box_reviews: empty finding and decision cells are "" (no finding named, undecided), not missing values
    for name, dtype, na in (("allocations", {"unit": str, "arm": str}, True),
                            ("box_reviews", {"read_id": str, "case_code": str, "reader": str, "arm": str,
                                             "box_id": str, "finding": str, "decision": str}, False),
                            ("arena", {"task_id": str, "case_code": str, "center": str, "expert": str,
                                       "model_a": str, "model_b": str, "preference": str, "status": str,
                                       "comment": str}, False)):
        f = Path(path) / f"{name}.csv"
        try:
            tables[name] = pd.read_csv(f, dtype=dtype, keep_default_na=na) if f.exists() and f.stat().st_size \
                else pd.DataFrame()
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
    for name in ("reads", "ratings"):
        t = tables[name]
        for col in ("arm", "arm_a", "arm_b", "status", "preference"):
            if col in t:
                t[col] = t[col].astype("string")
    return tables


@dataclass(frozen=True)
class PrimarySummary(Section):
    """The headline numbers of the declared primary analysis (``results.primary``, a
    :class:`~analysis.stats.primary.PrimaryBlock`), for the runs page, the API and the command's printout;
    ``to_dict()`` is ``results.json``'s ``summary`` and the run's stored ``summary``.

    The arms (``assisted``, ``control``, ``masked``) are the report's :class:`Labels`. Quality: the difference
    assisted - control (1-5 points) with its CI, p, Satterthwaite df, cases analysed and the fit's flags. Reading time:
    the ratio of geometric means assisted / control with its CI and p, and the relative reduction 1 - ratio (its CI
    from the ratio's, bounds swapped). Preference: the share of pairs where at least k experts prefer the assisted
    report (CI, p, the null share it is tested against, k) and the decisive-pair rate wins / (wins + losses), the
    preference endpoint's secondary (CI, p, ties, pairs). ``confirmatory``: the fixed-sequence verdict per endpoint;
    ``engine``: the mixed-model engine and versions. A number that could not be computed is None."""

    assisted: str | None
    control: str | None
    masked: bool
    quality_difference: float | None
    quality_ci: tuple[float | None, float | None] | None
    quality_p: float | None
    quality_df: float | None
    quality_n: int | None
    quality_converged: bool | None
    quality_boundary: bool | None
    quality_fallback: str | None
    time_ratio: float | None
    time_ratio_ci: tuple[float | None, float | None] | None
    time_ratio_p: float | None
    time_converged: bool | None
    time_boundary: bool | None
    time_fallback: str | None
    time_relative_reduction: float | None
    time_relative_reduction_ci: tuple[float | None, float | None]
    preference_share: float | None
    preference_share_ci: tuple[float | None, float | None] | None
    preference_share_p: float | None
    preference_null_share: float | None
    preference_k: int | str | None
    preference_converged: bool | None
    preference_rate: float | None
    preference_ci: tuple[float | None, float | None] | None
    preference_p: float | None
    preference_ties: int | None
    preference_n: int | None
    confirmatory: dict[str, bool]
    engine: str


def _detail(details: PrimaryDetails | None, name: str) -> Any:
    """A field of an endpoint's details, None when there are none or the field was not computed (UNSET)."""
    value = getattr(details, name, None)
    return None if value is UNSET else value


def _one_minus(x: float | None) -> float | None:
    return None if x is None else 1 - x  # NaN stays NaN: None in to_dict


def primary_summary(results: AnalysisResults) -> PrimarySummary:
    """:class:`PrimarySummary` of the typed results."""
    pr = results.primary
    q, t, p = pr.quality, pr.reading_time, pr.preference
    ratio_ci = t.ci or (None, None)
    lab = results.labels
    return PrimarySummary(
        assisted=lab.assisted, control=lab.control, masked=lab.masked,
        quality_difference=q.estimate, quality_ci=q.ci, quality_p=q.p, quality_df=q.df, quality_n=q.n_cases,
        quality_converged=q.converged, quality_boundary=q.boundary, quality_fallback=q.fallback,
        time_ratio=t.estimate, time_ratio_ci=t.ci, time_ratio_p=t.p, time_converged=t.converged,
        time_boundary=t.boundary, time_fallback=t.fallback,
        time_relative_reduction=_one_minus(t.estimate),
        time_relative_reduction_ci=(_one_minus(ratio_ci[1]), _one_minus(ratio_ci[0])),
        preference_share=p.estimate, preference_share_ci=p.ci, preference_share_p=p.p,
        preference_null_share=_detail(p.details, "null_share"), preference_k=_detail(p.details, "k"),
        preference_converged=p.converged,
        preference_rate=_detail(p.details, "decisive_rate"), preference_ci=_detail(p.details, "decisive_rate_ci"),
        preference_p=_detail(p.details, "decisive_rate_p"), preference_ties=_detail(p.details, "ties"),
        preference_n=_detail(p.details, "n_pairs"),
        confirmatory={k: getattr(pr, k).confirmatory for k in ("quality", "reading_time", "preference")},
        engine=pr.engine,
    )
