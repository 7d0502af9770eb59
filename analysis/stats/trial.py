"""Whole-trial analysis (docs/design.md section 7) from the tidy export tables: typed sections (:mod:`.sections`).

Export table schema (CSV files in the export directory, one header row, UTF-8; the Django export writes exactly this):

``reads.csv`` - one row per read (one reader's interpretation of one case in one arm)
    read_id, case_code, center, reader, reader_experience (junior/senior), arm (arm code; masked as X/Y before
    lock), active_seconds, wall_seconds, then per finding ``finding_<code>`` (0/1, the reader marked it present)
    and ``confidence_<code>`` (the reader's confidence in that present/absent call, any increasing numeric scale;
    may be empty). Optional: submitted (0/1; rows with 0 are excluded from analysis and counted in the flow).
``ratings.csv`` - one row per expert judgement of a pair of reports of one case
    rating_id, case_code, center, expert, arm_a, arm_b (arm codes of the reports shown as A and B), preference
    ('A', 'B' or 'none'), quality_a, quality_b (1-5). Optional: reader_a, reader_b (reader of each report; when
    absent the reader is looked up in reads.csv by (case_code, arm) if that is unique).
``drafts.csv`` - one row per model draft
    case_code, model_version, then ``prob_<code>`` per finding (probability 0-1).
``cases.csv`` - one row per enrolled case
    case_code, center, then ``ref_<code>`` per finding (reference standard 0/1; may be empty).

Any table may be missing or empty; every analysis then reports n = 0 with null estimates.

Arms: ``assisted_arm`` (default 'ai_assisted') is compared against the other arm (``control_arm``, default the
only other arm, or 'unassisted'). When ``assisted_arm`` is absent and exactly two arms exist (masked X/Y exports),
the first label in sorted order plays 'assisted' and a warning says so (:func:`.arms.resolve_arms`). Differences
are assisted - control, ratios assisted / control, relative reduction 1 - mean(assisted) / mean(control).
"""
from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._result import StatResult, empty_result
from .agreement import FleissKappaResult, cohen_kappa, fleiss_kappa, icc
from .arms import resolve_arms
from .blinding import blinding_from_ratings
from .calibration import CalibrationReport, calibration_report, reliability
from .comparisons import (
    RelativeReductionResult,
    describe,
    geometric_mean_ratio,
    mann_whitney,
    paired_t_test,
    relative_reduction,
    welch_t_test,
    wilcoxon_signed_rank,
)
from .mrmc import obuchowski_rockette
from .mrmc_split import METHOD as SPLIT_METHOD
from .mrmc_split import split_plot_mrmc
from .mrmc_ustat import METHOD as USTAT_METHOD
from .mrmc_ustat import ustat_mrmc
from .primary import DESCRIPTIVE_LABEL, PrimaryResult, primary_analysis
from .proportions import panel_majority, preference_rate
from .roc import AUCResult, OperatingPointResult, auc_delong, sensitivity_specificity
from .sections import (
    MRMC,
    Agreement,
    AIStandalone,
    ArmAccuracy,
    ArmComparison,
    ArmFlow,
    ArmsUsed,
    FindingAccuracy,
    Flow,
    KappaPair,
    KappaSummary,
    ModelFinding,
    ModelPointer,
    MRMCNote,
    PreferenceSection,
    QualitySection,
    ReaderAccuracy,
    ReadingTimeSection,
    SubgroupEffects,
    Subgroups,
    TrialResults,
)

DESIGNS = ("paired_by_case", "case_randomised", "crossover")
PREFERENCE_NOTE = ("descriptive only: the binomial p treats expert judgements and cases as independent (they are "
                   "clustered by reader and case), and 0.5 is not the null share of 'at least k prefer' when ties are "
                   "possible; see primary.preference")
TABLES = ("reads", "ratings", "drafts", "cases")


def read_export_dir(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read reads.csv, ratings.csv, drafts.csv, cases.csv from ``path`` (missing or empty files: empty frames)."""
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        f = Path(path) / f"{name}.csv"
        if f.exists() and f.stat().st_size > 0:
            try:
                out[name] = pd.read_csv(f, dtype={"case_code": str, "reader": str, "expert": str, "center": str,
                                                  "read_id": str, "rating_id": str})
            except pd.errors.EmptyDataError:
                out[name] = pd.DataFrame()
        else:
            out[name] = pd.DataFrame()
    return out


def _table(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    t = tables.get(name)
    return t.copy() if isinstance(t, pd.DataFrame) else pd.DataFrame()


def _findings(tables: dict[str, pd.DataFrame]) -> list[str]:
    seen: list[str] = []
    for name, prefix in (("cases", "ref_"), ("drafts", "prob_"), ("reads", "finding_")):
        for c in _table(tables, name).columns:
            if str(c).startswith(prefix) and c[len(prefix):] not in seen:
                seen.append(c[len(prefix):])
    return seen


def _quality_long(ratings: pd.DataFrame, reads: pd.DataFrame) -> pd.DataFrame:
    """One row per (rating, report): case_code, center, expert, arm, reader, score, slot (A/B)."""
    cols = ["rating_id", "case_code", "center", "expert", "arm", "reader", "score", "slot"]
    if ratings.empty or "arm_a" not in ratings:
        return pd.DataFrame(columns=cols)
    parts = []
    for slot in ("a", "b"):
        if f"arm_{slot}" not in ratings:
            continue
        p = pd.DataFrame({
            "rating_id": ratings.get("rating_id", pd.Series(range(len(ratings)), index=ratings.index)),
            "case_code": ratings.get("case_code"), "center": ratings.get("center"),
            "expert": ratings.get("expert"), "arm": ratings[f"arm_{slot}"].astype("string"),
            "reader": ratings[f"reader_{slot}"] if f"reader_{slot}" in ratings else pd.NA,
            "score": pd.to_numeric(ratings.get(f"quality_{slot}"), errors="coerce"), "slot": slot.upper(),
        })
        parts.append(p)
    q = pd.concat(parts, ignore_index=True)
    q = q[q["arm"].notna()]
    if q["reader"].isna().all() and not reads.empty and {"case_code", "arm", "reader"} <= set(reads.columns):
        r = reads[["case_code", "arm", "reader"]].dropna().astype(str)
        uniq = r.groupby(["case_code", "arm"])["reader"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
        q["reader"] = [uniq.get((str(c), str(a))) for c, a in zip(q["case_code"], q["arm"], strict=True)]
    for c in ("case_code", "center", "expert", "arm", "reader"):
        q[c] = q[c].astype("string")
    return q[cols]


def _arm_compare(df: pd.DataFrame, value: str, unit: str, assisted: Any, control: Any, paired: bool,
                 log_scale: bool = False) -> ArmComparison:
    """Case-level comparison of ``value`` between arms (mean per unit and arm)."""
    out: dict[str, Any] = {}
    d = df[df["arm"].isin([assisted, control])]
    d = d[np.isfinite(pd.to_numeric(d[value], errors="coerce"))]
    per = d.groupby([unit, "arm"])[value].mean().unstack("arm") if len(d) else pd.DataFrame()
    a = per[assisted] if assisted in per else pd.Series(dtype=float)
    c = per[control] if control in per else pd.Series(dtype=float)
    if paired:
        both = pd.concat([a, c], axis=1, keys=["a", "c"]).dropna()
        out["n_pairs"] = len(both)
        if log_scale:
            out["geometric_mean_ratio"] = geometric_mean_ratio(both["a"], both["c"], paired=True)
            out["relative_reduction"] = relative_reduction(both["a"], both["c"], paired=True)
            out["wilcoxon"] = wilcoxon_signed_rank(both["a"], both["c"])
        else:
            out["paired_t"] = paired_t_test(both["a"], both["c"])
            out["wilcoxon"] = wilcoxon_signed_rank(both["a"], both["c"])
    else:
        out["n_units"] = {"assisted": int(a.notna().sum()), "control": int(c.notna().sum())}
        if log_scale:
            out["geometric_mean_ratio"] = geometric_mean_ratio(a.dropna(), c.dropna(), paired=False)
            out["relative_reduction"] = relative_reduction(a.dropna(), c.dropna(), paired=False)
            out["mann_whitney"] = mann_whitney(a.dropna(), c.dropna())
        else:
            out["welch_t"] = welch_t_test(a.dropna(), c.dropna())
            out["mann_whitney"] = mann_whitney(a.dropna(), c.dropna())
    for v in out.values():
        if isinstance(v, StatResult):
            v.label = DESCRIPTIVE_LABEL
    return ArmComparison(note=DESCRIPTIVE_LABEL, **out)


def _per_arm(df: pd.DataFrame, value: str, arms: list[Any]) -> dict[str, Any]:
    return {str(arm): describe(df.loc[df["arm"] == arm, value]) if len(df) else describe([]) for arm in arms}


def _quality_section(q: pd.DataFrame, assisted: Any, control: Any, paired: bool,
                     primary: PrimaryResult) -> QualitySection:
    case_means = q.groupby(["case_code", "arm"], as_index=False)["score"].mean() if len(q) else q
    return QualitySection(descriptive_reports=_per_arm(q, "score", [assisted, control]),
                          descriptive_case_means=_per_arm(case_means, "score", [assisted, control]),
                          comparison=_arm_compare(q, "score", "case_code", assisted, control, paired),
                          mixed_model=ModelPointer.of(primary, "primary.quality"))


def _time_section(reads: pd.DataFrame, assisted: Any, control: Any, paired: bool,
                  primary: PrimaryResult) -> ReadingTimeSection:
    if reads.empty or "active_seconds" not in reads:
        reads = pd.DataFrame(columns=["case_code", "arm", "active_seconds", "reader", "center"])
    r = reads.copy()
    r["active_seconds"] = pd.to_numeric(r["active_seconds"], errors="coerce")
    descriptive = _per_arm(r, "active_seconds", [assisted, control])
    wall = None
    if "wall_seconds" in r:
        r["wall_seconds"] = pd.to_numeric(r["wall_seconds"], errors="coerce")
        wall = _per_arm(r, "wall_seconds", [assisted, control])
    d_a, d_c = descriptive[str(assisted)], descriptive[str(control)]
    rr_all = relative_reduction(
        r.loc[r["arm"] == assisted, "active_seconds"], r.loc[r["arm"] == control, "active_seconds"], paired=False
    ) if d_a["n"] and d_c["n"] else empty_result("Relative reduction of the mean", "no reads",
                                                         RelativeReductionResult)
    return ReadingTimeSection(
        descriptive=descriptive, descriptive_wall=wall, relative_reduction_all_reads=rr_all,
        comparison=_arm_compare(r, "active_seconds", "case_code", assisted, control, paired, log_scale=True),
        mixed_model=ModelPointer.of(primary, "primary.reading_time"))


def _preference_section(ratings: pd.DataFrame, assisted: Any, control: Any, majority_k: int | None
                        ) -> PreferenceSection:
    if ratings.empty or not {"arm_a", "arm_b", "preference"} <= set(ratings.columns):
        return PreferenceSection(pairs=preference_rate([]), panel_majority=panel_majority(pd.DataFrame()))
    r = ratings[ratings["arm_a"].astype(str).isin([assisted, control]) &
                ratings["arm_b"].astype(str).isin([assisted, control]) &
                (ratings["arm_a"].astype(str) != ratings["arm_b"].astype(str))].copy()
    pref = r["preference"].astype(str).str.strip().str.upper()
    chosen = np.where(pref == "A", r["arm_a"].astype(str), np.where(pref == "B", r["arm_b"].astype(str), "none"))
    r["preferred"] = np.where(chosen == assisted, "assisted", np.where(chosen == "none", "none", "other"))
    r.loc[r["preference"].isna(), "preferred"] = None
    r = r[r["preferred"].notna()]
    pairs = preference_rate(r["preferred"].tolist(), assisted="assisted", tie="none")
    majority = panel_majority(r, case_col="case_code", preference_col="preferred", assisted="assisted", k=majority_k)
    for v in (pairs, majority):
        v.label = PREFERENCE_NOTE
    by_center = {str(c): preference_rate(g["preferred"].tolist(), assisted="assisted", tie="none")
                 for c, g in r.groupby("center")} if "center" in r else None
    return PreferenceSection(pairs=pairs, panel_majority=majority, note=PREFERENCE_NOTE, by_center=by_center)


def _agreement_section(q: pd.DataFrame, ratings: pd.DataFrame) -> Agreement:
    if q.empty:
        none = empty_result("Agreement", "no ratings")
        return Agreement(quality_kappa_quadratic=KappaSummary(mean=None, pairs=[]), quality_icc={"ICC(1,1)": none},
                         preference_fleiss_kappa=none)
    q = q.dropna(subset=["score", "expert"]).copy()
    q["unit"] = q["case_code"].astype(str) + "|" + q["arm"].astype(str) + "|" + q["reader"].astype(str)
    wide = q.pivot_table(index="unit", columns="expert", values="score", aggfunc="mean")
    pairs = []
    for e1, e2 in combinations(wide.columns, 2):
        both = wide[[e1, e2]].dropna()
        if len(both) >= 2:
            k = cohen_kappa(both[e1], both[e2], "quadratic", categories=[1, 2, 3, 4, 5])
            pairs.append(KappaPair(expert_1=e1, expert_2=e2, n=k.n, kappa=k.estimate, ci=k.ci, p=k.p))
    vals = [p.kappa for p in pairs if p.kappa is not None]
    kappas = KappaSummary(mean=float(np.mean(vals)) if vals else None, pairs=pairs,
                          median=float(np.median(vals)) if vals else None, n_pairs=len(vals))
    # One-way ICC(1,1) needs no crossing: rater 'slots' in order within each report.
    q["slot_no"] = q.groupby("unit").cumcount()
    slots = q.pivot_table(index="unit", columns="slot_no", values="score")
    k_common = int(slots.notna().sum(axis=1).mode().iloc[0]) if len(slots) else 0
    icc_out: dict[str, Any] = {"ICC(1,1)": icc(slots.iloc[:, :k_common] if k_common else slots, "ICC(1,1)")}
    complete = wide.dropna()
    if len(complete) >= 2 and complete.shape[1] >= 2:
        icc_out["ICC(2,1)"] = icc(complete, "ICC(2,1)")
        icc_out["ICC(3,1)"] = icc(complete, "ICC(3,1)")
        icc_out["ICC(2,k)"] = icc(complete, "ICC(2,k)")
    return Agreement(quality_kappa_quadratic=kappas, quality_icc=icc_out,
                     preference_fleiss_kappa=_preference_fleiss(ratings))


def _preference_fleiss(ratings: pd.DataFrame) -> StatResult:
    if not ratings.empty and {"preference", "case_code"} <= set(ratings.columns):
        r = ratings.dropna(subset=["preference"]).copy()
        # label preferences by arm so the A/B order does not matter
        pref = r["preference"].astype(str).str.upper()
        r["chosen"] = np.where(pref == "A", r["arm_a"].astype(str), np.where(pref == "B", r["arm_b"].astype(str),
                                                                              "none"))
        r["slot_no"] = r.groupby("case_code").cumcount()
        w = r.pivot_table(index="case_code", columns="slot_no", values="chosen", aggfunc="first")
        kk = int(w.notna().sum(axis=1).mode().iloc[0]) if len(w) else 0
        return fleiss_kappa(w.iloc[:, :kk]) if kk >= 2 else \
            empty_result("Fleiss' kappa", "fewer than 2 experts per case", FleissKappaResult)
    return empty_result("Fleiss' kappa", "no ratings", FleissKappaResult)


def _truth_table(cases: pd.DataFrame, code: str) -> pd.Series:
    col = f"ref_{code}"
    if cases.empty or col not in cases or "case_code" not in cases:
        return pd.Series(dtype=float)
    t = pd.to_numeric(cases[col], errors="coerce")
    return pd.Series(t.to_numpy(), index=cases["case_code"].astype(str)).dropna()


def _with_shown(report: CalibrationReport, drafts: pd.DataFrame, truth: pd.Series, code: str) -> CalibrationReport:
    """Adds ``shown``: the reliability of the calibrated probabilities the drafts carried (``calprob_<finding>``,
    the stored expert calibration as applied when each draft was made: docs/calibration.md), on the cases that
    have one; nothing when no draft was calibrated or the report has a note instead."""
    col = f"calprob_{code}"
    if report.note is not None or col not in drafts:
        return report
    shown = pd.to_numeric(drafts.groupby("case_code")[col].mean(), errors="coerce")
    j = pd.concat([truth.rename("truth"), shown.rename("p")], axis=1, join="inner").dropna()
    if len(j) < 2:
        return report
    return replace(report, shown=reliability(j["p"].clip(0, 1), j["truth"].astype(int)))


def _ai_section(drafts: pd.DataFrame, cases: pd.DataFrame, findings: list[str], threshold: float | dict[str, float]
                ) -> AIStandalone:
    out: dict[str, dict[str, ModelFinding]] = {}
    if drafts.empty or "case_code" not in drafts:
        return AIStandalone(note="no drafts", models={})
    drafts = drafts.copy()
    drafts["case_code"] = drafts["case_code"].astype(str)
    if "model_version" not in drafts:
        drafts["model_version"] = "model"
    for mv, g in drafts.groupby("model_version"):
        per: dict[str, ModelFinding] = {}
        for code in findings:
            col = f"prob_{code}"
            truth = _truth_table(cases, code)
            if col not in g or truth.empty:
                per[code] = ModelFinding(
                    auc=empty_result("Empirical AUC, DeLong variance", "no reference or probabilities", AUCResult),
                    operating_point=empty_result("Sensitivity and specificity", "no data", OperatingPointResult))
                continue
            prob = g.groupby("case_code")[col].mean()
            j = pd.concat([truth.rename("truth"), pd.to_numeric(prob, errors="coerce").rename("p")], axis=1,
                          join="inner").dropna()
            thr = threshold.get(code, 0.5) if isinstance(threshold, dict) else threshold
            per[code] = ModelFinding(auc=auc_delong(j["truth"], j["p"], positive=1, direction="<"),
                                     operating_point=sensitivity_specificity(j["truth"], j["p"], thr, positive=1),
                                     # reliability diagram, ECE, Brier; Platt/isotonic cross-fitted on these cases
                                     calibration=_with_shown(calibration_report(j["p"].clip(0, 1),
                                                                                j["truth"].astype(int)),
                                                             g, truth, code))
        out[str(mv)] = per
    return AIStandalone(models=out)


def _reader_accuracy_section(reads: pd.DataFrame, cases: pd.DataFrame, findings: list[str], assisted: Any,
                             control: Any, design: str) -> ReaderAccuracy:
    out: dict[str, FindingAccuracy] = {}
    if reads.empty or "case_code" not in reads:
        return ReaderAccuracy(findings={}, note="no reads")
    reads = reads.copy()
    reads["case_code"] = reads["case_code"].astype(str)
    for code in findings:
        truth = _truth_table(cases, code)
        call_col, conf_col = f"finding_{code}", f"confidence_{code}"
        block: dict[str, ArmAccuracy] = {}
        if truth.empty or call_col not in reads:
            out[code] = FindingAccuracy(note="no reference standard or no reader calls")
            continue
        r = reads[reads["arm"].isin([assisted, control])].copy()
        r["truth"] = r["case_code"].map(truth)
        r["call"] = pd.to_numeric(r[call_col], errors="coerce")
        r = r.dropna(subset=["truth", "call"])
        # ROC rating: +confidence when marked present, -confidence when absent; the 0/1 call when no confidence.
        conf = pd.to_numeric(r[conf_col], errors="coerce") if conf_col in r else pd.Series(np.nan, index=r.index)
        r["rating"] = np.where(conf.notna(), np.where(r["call"] > 0, 1, -1) * conf.abs(), r["call"])
        for arm in (assisted, control):
            ra = r[r["arm"] == arm]
            block[str(arm)] = ArmAccuracy(
                sens_spec=sensitivity_specificity(ra["truth"], ra["call"], 0.5, positive=1),
                auc_pooled_reads=auc_delong(ra["truth"], ra["rating"], positive=1, direction="<"))
        out[code] = FindingAccuracy(
            by_arm=block, mrmc=_reader_mrmc(r, assisted, control, design),
            mrmc_ustat=None if design == "crossover" else _reader_mrmc_ustat(r, assisted, control))
    return ReaderAccuracy(findings=out, note="pooled-read AUCs ignore reader clustering; use the MRMC block")


def _reader_mrmc(r: pd.DataFrame, assisted: Any, control: Any, design: str) -> MRMC:
    """Crossover: Obuchowski-Rockette (every reader reads every case in both arms). Nested designs (paired by case,
    case randomised): OR for split-plot / nested readers on the reads as they are (docs/design.md section 7)."""
    m = r.rename(columns={"case_code": "case", "arm": "modality"})[["reader", "modality", "case", "truth", "rating"]]
    if design == "crossover":
        return obuchowski_rockette(m, modalities=[assisted, control])
    res = split_plot_mrmc(m, modalities=[assisted, control])
    if res is None:
        return MRMCNote(method=SPLIT_METHOD, note="fewer than 2 readers per arm with >= 2 positive and >= 2 negative "
                                                  "cases read", n=int(m["case"].nunique()))
    return res


def _reader_mrmc_ustat(r: pd.DataFrame, assisted: Any, control: Any) -> MRMC:
    """Alternative for nested designs: the Gallas U-statistic variance (iMRMC's method) on the same reads
    (docs/primary_analysis.md, readers' accuracy)."""
    m = r.rename(columns={"case_code": "case", "arm": "modality"})[["reader", "modality", "case", "truth", "rating"]]
    res = ustat_mrmc(m, modalities=[assisted, control])
    if res is None:
        return MRMCNote(method=USTAT_METHOD, note="an arm has no reader with a positive and a negative case read",
                        n=int(m["case"].nunique()))
    return res


def _subgroups(q: pd.DataFrame, reads: pd.DataFrame, assisted: Any, control: Any, paired: bool) -> Subgroups:
    out: dict[str, dict[str, dict[str, StatResult]]] = {"center": {}, "reader_experience": {}}
    if len(q) and "center" in q:
        for c, g in q.groupby("center"):
            res = _arm_compare(g, "score", "case_code", assisted, control, paired)
            out["center"].setdefault(str(c), {})["quality"] = res.t_test
    if not reads.empty and "center" in reads and "active_seconds" in reads:
        rr = reads.copy()
        rr["active_seconds"] = pd.to_numeric(rr["active_seconds"], errors="coerce")
        for c, g in rr.groupby("center"):
            res = _arm_compare(g, "active_seconds", "case_code", assisted, control, paired, log_scale=True)
            out["center"].setdefault(str(c), {})["time_ratio"] = res.geometric_mean_ratio
        if "reader_experience" in rr:
            exp_by_reader = rr.dropna(subset=["reader"]).astype({"reader": str}).groupby("reader")[
                "reader_experience"].first()
            for lvl, g in rr.groupby("reader_experience"):
                out["reader_experience"].setdefault(str(lvl), {})["time_ratio"] = geometric_mean_ratio(
                    g.loc[g["arm"] == assisted, "active_seconds"], g.loc[g["arm"] == control, "active_seconds"],
                    paired=False)
            if len(q):
                qq = q.copy()
                qq["reader_experience"] = qq["reader"].map(exp_by_reader)
                for lvl, g in qq.dropna(subset=["reader_experience"]).groupby("reader_experience"):
                    out["reader_experience"].setdefault(str(lvl), {})["quality"] = welch_t_test(
                        g.loc[g["arm"] == assisted, "score"], g.loc[g["arm"] == control, "score"])
    return Subgroups(**{by: {level: SubgroupEffects(**effects) for level, effects in levels.items()}
                        for by, levels in out.items()})


def _flow(tables: dict[str, pd.DataFrame], reads: pd.DataFrame, q: pd.DataFrame, assisted: Any, control: Any,
          n_unsubmitted: int) -> Flow:
    cases = _table(tables, "cases")
    n_enrolled = int(cases["case_code"].nunique()) if "case_code" in cases else 0
    by_arm = {}
    for arm in (assisted, control):
        ra = reads[reads["arm"] == arm] if "arm" in reads else reads.iloc[0:0]
        by_arm[str(arm)] = ArmFlow(reads=len(ra), cases_read=int(ra["case_code"].nunique()) if len(ra) else 0)
    both = 0
    if len(reads) and "arm" in reads:
        arms_per_case = reads[reads["arm"].isin([assisted, control])].groupby("case_code")["arm"].nunique()
        both = int((arms_per_case == 2).sum())
    return Flow(cases_enrolled=n_enrolled, by_arm=by_arm, cases_read_in_both_arms=both,
                reads_excluded_unsubmitted=n_unsubmitted,
                cases_rated=int(q["case_code"].nunique()) if len(q) else 0,
                ratings=int(q["rating_id"].nunique()) if len(q) else 0)


def analyse_trial(
    tables: dict[str, pd.DataFrame],
    design: str = "paired_by_case",
    assisted_arm: Any = "ai_assisted",
    control_arm: Any | None = None,
    majority_k: int | None = None,
    threshold: float | dict[str, float] = 0.5,
    findings: list[str] | None = None,
    n_permutations: int = 0,
    seed: int = 20250101,
    subgroups: bool = True,
    df_method: str = "satterthwaite",
) -> TrialResults:
    """docs/design.md section 7, primary and secondary analyses, from the export tables (see module docstring).

    ``design``: 'paired_by_case' (default), 'case_randomised' or 'crossover'. ``majority_k``: experts needed for a
    case to count as 'assisted preferred' (default strict majority of the panel that rated it; the reference trial
    uses 3 of 5). ``threshold``: the AI operating point (one value or per finding code). Returns a
    :class:`~analysis.stats.sections.TrialResults` whose first section is ``primary`` (the declared primary
    analysis, :func:`analysis.stats.primary.primary_analysis`; ``n_permutations``/``seed`` drive its opt-in
    preference randomisation sensitivity test, ``subgroups`` its interaction models, ``df_method`` its df:
    'satterthwaite' or 'kenward-roger'), then design, arms, warnings, flow, quality, reading_time, preference,
    ai_standalone, reader_accuracy, agreement, subgroups, blinding (Bang's and James's indices of the experts'
    guesses, :mod:`.blinding`). The case-level tests in quality / reading_time / preference are descriptive
    (labelled).
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    reads, ratings, n_unsub = _analysis_tables(tables)
    observed = _observed_arms(reads, ratings)
    choice = resolve_arms(observed, str(assisted_arm), control_arm)
    warnings = list(choice.warnings) + ([choice.problem] if choice.problem else [])
    assisted = choice.assisted
    control = str(choice.control) if choice.control is not None else None
    paired = design != "case_randomised"
    findings = findings if findings is not None else _findings(tables)
    q = _quality_long(ratings, reads)
    primary = primary_analysis({"reads": reads, "ratings": ratings}, design=design, majority_k=majority_k,
                               assisted=str(assisted), control=str(control), n_permutations=n_permutations,
                               rng=np.random.default_rng(seed), subgroups=subgroups, df_method=df_method)
    return TrialResults(
        primary=primary,
        design=design,
        paired_analysis=paired,
        arms=ArmsUsed(assisted=assisted, control=control, observed=observed),
        findings=findings,
        warnings=warnings + list(primary.warnings),
        flow=_flow(tables, reads, q, assisted, control, n_unsub),
        quality=_quality_section(q, assisted, control, paired, primary.quality),
        reading_time=_time_section(reads, assisted, control, paired, primary.reading_time),
        preference=_preference_section(ratings, assisted, control, majority_k),
        ai_standalone=_ai_section(_table(tables, "drafts"), _table(tables, "cases"), findings, threshold),
        reader_accuracy=_reader_accuracy_section(reads, _table(tables, "cases"), findings, assisted, control, design),
        agreement=_agreement_section(q, ratings),
        subgroups=_subgroups(q, reads, assisted, control, paired),
        blinding=blinding_from_ratings(ratings, assisted, control),
    )


def _analysis_tables(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Reads (submitted only) and ratings with their label columns as strings, and the unsubmitted reads' count."""
    reads, ratings = _table(tables, "reads"), _table(tables, "ratings")
    for t in (reads, ratings):
        for c in ("case_code", "center", "reader", "expert", "arm", "arm_a", "arm_b"):
            if c in t:
                t[c] = t[c].astype("string")
    n_unsub = 0
    if "submitted" in reads:
        sub = pd.to_numeric(reads["submitted"], errors="coerce").fillna(0) > 0
        n_unsub = int((~sub).sum())
        reads = reads[sub]
    return reads, ratings, n_unsub


def _observed_arms(reads: pd.DataFrame, ratings: pd.DataFrame) -> list[str]:
    arms: list[Any] = []
    for t, cols in ((reads, ["arm"]), (ratings, ["arm_a", "arm_b"])):
        for c in cols:
            if c in t:
                arms.extend(t[c].dropna().unique().tolist())
    return sorted({str(a) for a in arms if pd.notna(a)})


def analyse_trial_tables(tables: dict[str, pd.DataFrame], design: str = "paired_by_case",
                         **kwargs: Any) -> dict[str, Any]:
    """:func:`analyse_trial` as one JSON-able dict (its ``to_dict()``; the first key is ``primary``)."""
    return analyse_trial(tables, design=design, **kwargs).to_dict()


def analyse_export_dir(path: str | Path, design: str = "paired_by_case", **kwargs: Any) -> dict[str, Any]:
    """Read the export CSVs from ``path`` and run :func:`analyse_trial_tables`."""
    return analyse_trial_tables(read_export_dir(path), design=design, **kwargs)


__all__ = ["analyse_trial", "analyse_trial_tables", "analyse_export_dir", "read_export_dir", "DESIGNS", "StatResult"]
