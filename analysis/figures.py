"""The report's figures (matplotlib, PNG) drawn from the typed results and the export tables.

Masked exports show the arms as X and Y; nothing here knows which is which.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from .pipeline import AnalysisResults, ArmConsort, prepare_tables  # noqa: E402
from .stats._result import UNSET, StatResult  # noqa: E402
from .stats.primary import SubgroupModels  # noqa: E402
from .stats.sections import ArmComparison  # noqa: E402
from .templatetags.report_format import ci as _ci  # noqa: E402
from .templatetags.report_format import num as _f  # noqa: E402

FIGURES = ("consort", "reading_time", "quality", "preference", "roc", "reliability", "forest")
COLORS = {"assisted": "#1f6f8b", "control": "#d08c2a", "tie": "#9aa0a6"}
DPI = 110


@dataclass(frozen=True)
class Effect:
    """An arm effect as shown in a table row or forest plot: estimate, interval, p (None when not estimated)."""

    estimate: float | None = None
    ci: Any = None
    p: float | None = None

    @classmethod
    def of(cls, x: Any) -> Effect | None:
        """From a result object (StatResult, PrimaryResult, split-plot MRMC, ...) or a result dict."""
        if x is None:
            return None
        if isinstance(x, dict):
            return cls(x.get("estimate"), x.get("ci"), x.get("p"))
        return cls(getattr(x, "estimate", None), getattr(x, "ci", None), getattr(x, "p", None))


@dataclass(frozen=True)
class ForestRow:
    """One row of the subgroup table and forest plot: quality difference and reading-time ratio."""

    name: str
    quality: Effect | None
    time: Effect | None

    @property
    def overall(self) -> bool:
        return self.name.startswith("Overall")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _arm_names(results: AnalysisResults) -> tuple[str, str]:
    """The arm labels shown (X and Y while masked)."""
    return results.labels.shown()


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def fig_reading_time(results: AnalysisResults, tables: dict[str, pd.DataFrame], path: Path) -> Path:
    a, c = _arm_names(results)
    reads = tables.get("reads", pd.DataFrame())
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    if reads.empty or "active_seconds" not in reads or "arm" not in reads:
        _empty(ax1)
        _empty(ax2)
    else:
        secs = pd.to_numeric(reads["active_seconds"], errors="coerce")
        data = {arm: secs[(reads["arm"].astype(str) == arm) & (secs > 0)].dropna().to_numpy() for arm in (a, c)}
        allv = np.concatenate([v for v in data.values() if len(v)] or [np.array([1.0])])
        bins = np.geomspace(max(allv.min(), 1e-3), max(allv.max(), allv.min() * 1.01 + 1e-3), 40)
        for arm, col in ((a, COLORS["assisted"]), (c, COLORS["control"])):
            if len(data[arm]):
                ax1.hist(data[arm], bins=bins, alpha=0.55, color=col, label=f"{arm} (n={len(data[arm])})")
                ax1.axvline(np.median(data[arm]), color=col, ls="--", lw=1)
        ax1.set_xscale("log")
        ax1.set_xlabel("Active reading time (s, log scale); dashed: median")
        ax1.set_ylabel("Reads")
        ax1.legend(frameon=False)
        present = [arm for arm in (a, c) if len(data[arm])]
        if present:
            bp = ax2.boxplot([data[arm] for arm in present], tick_labels=present, patch_artist=True, showfliers=False,
                             widths=0.5)
            for patch, arm in zip(bp["boxes"], present, strict=True):
                patch.set_facecolor(COLORS["assisted"] if arm == a else COLORS["control"])
                patch.set_alpha(0.6)
            ax2.set_yscale("log")
            ax2.set_ylabel("Seconds (log scale)")
        else:
            _empty(ax2)
    ax1.set_title("Reading time by arm")
    fig.tight_layout()
    return _save(fig, path)


def fig_quality(results: AnalysisResults, tables: dict[str, pd.DataFrame], path: Path) -> Path:
    a, c = _arm_names(results)
    r = tables.get("ratings", pd.DataFrame())
    scores: dict[str, list[float]] = {a: [], c: []}
    if not r.empty and "arm_a" in r:
        for slot in ("a", "b"):
            if f"arm_{slot}" in r and f"quality_{slot}" in r:
                q = pd.to_numeric(r[f"quality_{slot}"], errors="coerce")
                for arm in (a, c):
                    scores[arm] += q[(r[f"arm_{slot}"].astype(str) == arm)].dropna().tolist()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    if not any(scores.values()):
        _empty(ax)
    else:
        levels = np.arange(1, 6)
        w = 0.38
        for i, (arm, col) in enumerate(((a, COLORS["assisted"]), (c, COLORS["control"]))):
            s = np.asarray(scores[arm])
            share = np.array([(np.rint(s) == lv).mean() if len(s) else 0 for lv in levels])
            lab = f"{arm}: mean {s.mean():.2f} ± {s.std(ddof=1):.2f}" if len(s) > 1 else arm
            ax.bar(levels + (i - 0.5) * w, 100 * share, width=w, color=col, alpha=0.8, label=lab)
        ax.set_xticks(levels)
        ax.set_xlabel("Report quality (1 = poor, 5 = excellent)")
        ax.set_ylabel("% of scores")
        ax.legend(frameon=False, loc="upper left")
    ax.set_title("Expert quality scores by arm")
    fig.tight_layout()
    return _save(fig, path)


def _count(result: StatResult, name: str) -> int:
    """A count a result may leave unset (an empty result has none): 0 then."""
    value = getattr(result, name, UNSET)
    return 0 if value is UNSET or value is None else value


def fig_preference(results: AnalysisResults, path: Path) -> Path:
    a, c = _arm_names(results)
    pr = results.preference.pairs  # a PreferenceRateResult, or an empty StatResult when nothing was rated
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 2.8), gridspec_kw={"width_ratios": [3, 2]})
    n = _count(pr, "n_pairs")
    if not n:
        _empty(ax1, "no pairwise ratings")
        _empty(ax2)
    else:
        parts = [(f"{a} preferred", _count(pr, "assisted_preferred"), COLORS["assisted"]),
                 ("no preference", _count(pr, "ties"), COLORS["tie"]),
                 (f"{c} preferred", _count(pr, "other_preferred"), COLORS["control"])]
        left = 0.0
        for label, k, col in parts:
            share = 100 * k / n
            ax1.barh([0], [share], left=left, color=col, label=f"{label}: {k} ({share:.0f}%)")
            if share > 6:
                ax1.text(left + share / 2, 0, f"{share:.0f}%", ha="center", va="center", color="white")
            left += share
        ax1.set_xlim(0, 100)
        ax1.set_ylim(-0.6, 0.6)
        ax1.set_yticks([])
        ax1.set_xlabel(f"% of {n} judged pairs")
        ax1.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=8)
        est, ci = pr.estimate, pr.ci or (None, None)  # StatResult keeps a non-finite number as None
        if est is not None:
            lo, hi = ci[0] if ci[0] is not None else est, ci[1] if ci[1] is not None else est
            ax2.errorbar([est], [0], xerr=[[est - lo], [hi - est]], fmt="o", color=COLORS["assisted"], capsize=6)
            ax2.axvline(0.5, color="#888", ls="--", lw=1)
            ax2.set_xlim(0, 1)
            ax2.set_yticks([])
            ax2.set_xlabel(f"{a} preferred among decisive pairs\n(Clopper-Pearson 95% CI; dashed: 0.5)")
            ax2.set_ylim(-1, 1)
            ax2.text(est, 0.3, f"{est:.2f} ({_ci(ci)})", ha="center", fontsize=9)
        else:
            _empty(ax2)
    ax1.set_title("Expert preference")
    fig.tight_layout()
    return _save(fig, path)


def _roc_points(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="mergesort")
    t, s = truth[order], score[order]
    distinct = np.r_[np.where(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(t)[distinct]
    fp = np.cumsum(1 - t)[distinct]
    P, N = max(t.sum(), 1), max((1 - t).sum(), 1)
    return np.r_[0, fp / N], np.r_[0, tp / P]


def fig_roc(results: AnalysisResults, tables: dict[str, pd.DataFrame], path: Path) -> Path:
    findings = list(results.findings or [])
    drafts, cases = tables.get("drafts", pd.DataFrame()), tables.get("cases", pd.DataFrame())
    models = results.ai_standalone.models
    n = max(1, len(findings))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if not findings or drafts.empty or cases.empty or "case_code" not in drafts:
        _empty(axes[0][0], "no drafts or reference standard")
    else:
        d = drafts.copy()
        d["case_code"] = d["case_code"].astype(str)
        if "model_version" not in d:
            d["model_version"] = "model"
        ref = cases.copy()
        ref["case_code"] = ref["case_code"].astype(str)
        ref = ref.set_index("case_code")
        for i, code in enumerate(findings):
            ax = axes.ravel()[i]
            ax.plot([0, 1], [0, 1], color="#bbb", lw=1, ls=":")
            drawn = False
            for mv, g in d.groupby("model_version"):
                col, rcol = f"prob_{code}", f"ref_{code}"
                if col not in g or rcol not in ref:
                    continue
                p = pd.to_numeric(g.groupby("case_code")[col].mean(), errors="coerce")
                t = pd.to_numeric(ref[rcol], errors="coerce")
                j = pd.concat([t.rename("t"), p.rename("p")], axis=1, join="inner").dropna()
                if j.empty or j["t"].nunique() < 2:
                    continue
                fpr, tpr = _roc_points(j["t"].to_numpy(dtype=float), j["p"].to_numpy(dtype=float))
                found = models.get(str(mv), {}).get(code)
                auc = Effect.of(found.auc if found else None) or Effect()
                lab = f"{mv}: AUC {_f(auc.estimate)} ({_ci(auc.ci)})"
                ax.plot(fpr, tpr, lw=1.6, label=lab)
                drawn = True
            if drawn:
                ax.legend(frameon=False, loc="lower right", fontsize=7)
            else:
                _empty(ax, "no data")
            ax.set_title(code.replace("_", " ").capitalize(), fontsize=10)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.01)
            ax.set_xlabel("1 - specificity", fontsize=8)
            ax.set_ylabel("Sensitivity", fontsize=8)
            ax.set_aspect("equal")
    fig.suptitle("Model standalone ROC per finding (DeLong 95% CI)")
    fig.tight_layout()
    return _save(fig, path)


#: The reliability diagram's series: the raw probabilities and the cross-fitted recalibrations of
#: ``analysis.stats.calibration.calibration_report`` (each case's calibrated value from a fit that did not see it),
#: and, where drafts carried them, the calibrated probabilities shown to readers (the stored expert calibration).
RELIABILITY_SERIES = (("raw", "raw", "#1f6f8b", "o"), ("platt", "Platt (cross-fitted)", "#d08c2a", "s"),
                      ("isotonic", "isotonic (cross-fitted)", "#6941c6", "^"),
                      ("shown", "as shown to readers", "#c0392b", "D"))


@dataclass(frozen=True)
class ReliabilityPanel:
    """One model and finding of the reliability diagram: per series the non-empty bins as
    ``(mean predicted, observed rate, count)`` and the ECE; ``note`` where the calibration report has none."""

    model: str
    finding: str
    series: dict[str, list[tuple[float, float, int]]]
    ece: dict[str, float]
    n: int | None = None
    note: str | None = None


def reliability_panels(results: AnalysisResults) -> list[ReliabilityPanel]:
    """The diagram's data, from each model finding's calibration report (results.ai_standalone)."""
    panels = []
    for mv, per in results.ai_standalone.models.items():
        for code, blk in per.items():
            cal = blk.calibration
            series, ece = {}, {}
            for key, *_ in RELIABILITY_SERIES:
                summary = getattr(cal, key)
                if summary is None:
                    continue
                series[key] = [(float(b.mean_predicted), float(b.observed_rate), int(b.count))
                               for b in summary.bins if b.count]
                ece[key] = float(summary.ece)
            panels.append(ReliabilityPanel(str(mv), code, series, ece, n=cal.n or (cal.raw.n if cal.raw else None),
                                           note=cal.note))
    return panels


def fig_reliability(results: AnalysisResults, path: Path) -> Path:
    """Reliability diagram per model and finding: observed rate against mean predicted probability per bin (10
    equal-width bins; marker area ~ cases in the bin), raw and after Platt and isotonic recalibration
    (cross-fitted, 5 folds); the diagonal is perfect calibration."""
    panels = reliability_panels(results)
    n = max(1, len(panels))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if not panels:
        _empty(axes[0][0], "no drafts or reference standard")
    for ax, panel in zip(axes.ravel(), panels, strict=False):
        ax.plot([0, 1], [0, 1], color="#bbb", lw=1, ls=":")
        title = panel.finding.replace("_", " ").capitalize()
        ax.set_title(f"{title}\n{panel.model}" if len(results.ai_standalone.models) > 1 else title, fontsize=10)
        if not panel.series:
            _empty(ax, panel.note or "no data")
            continue
        for key, label, color, marker in RELIABILITY_SERIES:
            pts = panel.series.get(key)
            if not pts:
                continue
            x, y, k = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
            ax.plot(x, y, color=color, lw=1.2, alpha=0.8)
            ax.scatter(x, y, s=12 + 60 * k / max(k.max(), 1), color=color, marker=marker, zorder=3,
                       label=f"{label}: ECE {_f(panel.ece[key], 3)}")
        ax.legend(frameon=False, loc="upper left", fontsize=6.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("Mean predicted probability", fontsize=8)
        ax.set_ylabel("Observed rate", fontsize=8)
        ax.set_aspect("equal")
    fig.suptitle("Model calibration per finding: reliability diagrams (n cases per panel in the table)")
    fig.tight_layout()
    return _save(fig, path)


def _primary_forest_rows(results: AnalysisResults) -> list[ForestRow]:
    """Overall and per-subgroup arm effects from the primary models (arm x subgroup interactions)."""
    pr = results.primary
    if not isinstance(pr.subgroups, SubgroupModels):  # not fitted
        return []
    rows = [ForestRow("Overall (primary)", Effect.of(pr.quality), Effect.of(pr.reading_time))]
    for by in ("center", "reader_experience"):
        blk = getattr(pr.subgroups, by)
        qe = blk["quality"].effects if "quality" in blk else {}
        te = blk["reading_time"].effects if "reading_time" in blk else {}
        for lv in sorted(set(qe) | set(te)):
            name = f"Center {lv}" if by == "center" else f"{str(lv).capitalize()} readers"
            rows.append(ForestRow(name, Effect.of(qe.get(lv)), Effect.of(te.get(lv))))
    return rows if len(rows) > 1 else []


def forest_rows(results: AnalysisResults) -> list[ForestRow]:
    """The subgroup rows: the primary models' interactions when fitted, else the descriptive case-level effects."""
    primary_rows = _primary_forest_rows(results)
    if primary_rows:
        return primary_rows
    rows = [ForestRow("Overall", Effect.of(results.quality.comparison.t_test),
                      Effect.of(results.reading_time.comparison.geometric_mean_ratio))]
    sub = results.subgroups
    for c, blk in sorted(sub.center.items()):
        rows.append(ForestRow(f"Center {c}", Effect.of(blk.quality), Effect.of(blk.time_ratio)))
    for lvl, blk in sorted(sub.reader_experience.items()):
        rows.append(ForestRow(f"{lvl.capitalize() or 'Unknown'} readers", Effect.of(blk.quality),
                              Effect.of(blk.time_ratio)))
    return rows


def fig_forest(results: AnalysisResults, path: Path) -> Path:
    a, c = _arm_names(results)
    rows = forest_rows(results)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 0.5 * len(rows) + 1.6), sharey=True)
    ys = np.arange(len(rows))[::-1]
    for ax, idx, ref, title, log in ((ax1, 1, 0.0, f"Quality difference ({a} - {c})", False),
                                     (ax2, 2, 1.0, f"Reading time ratio ({a} / {c}, log scale)", True)):
        any_pt = False
        for y, row in zip(ys, rows, strict=True):
            r = (row.quality if idx == 1 else row.time) or Effect()
            est, ci = r.estimate, r.ci
            if est is None:
                continue
            lo, hi = (ci if ci and ci[0] is not None and ci[1] is not None else (est, est))
            bold = row.overall
            ax.errorbar([est], [y], xerr=[[est - lo], [hi - est]], fmt="D" if bold else "s",
                        color="black" if bold else COLORS["assisted"], capsize=3, ms=6 if bold else 5)
            any_pt = True
        ax.axvline(ref, color="#888", ls="--", lw=1)
        if log:
            ax.set_xscale("log")
            fmt = FuncFormatter(lambda v, _: f"{v:.2g}")
            ax.xaxis.set_major_formatter(fmt)
            ax.xaxis.set_minor_formatter(fmt)
            ax.tick_params(axis="x", which="minor", labelsize=7)
        if not any_pt:
            _empty(ax)
        ax.set_title(title, fontsize=10)
    ax1.set_yticks(ys)
    ax1.set_yticklabels([r.name for r in rows])
    fig.suptitle("Subgroups by center and reader experience (95% CI)")
    fig.tight_layout()
    return _save(fig, path)


def _box(ax, x: float, y: float, w: float, h: float, text: str, fc: str = "#f4f8fb") -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01,rounding_size=0.01",
                                fc=fc, ec="#1f3b4d", lw=1.1))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, wrap=True)


def _arrow(ax, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "-|>", "color": "#1f3b4d", "lw": 1.1})


NO_ARM_FLOW = ArmConsort(readers_allocated=0, cases_allocated=0, cases_assigned=0, reads=0, reads_submitted=0,
                         reads_not_submitted=0, cases_read=0)


def fig_consort(results: AnalysisResults, path: Path) -> Path:
    a, c = _arm_names(results)
    f = results.consort
    by = f.by_arm
    fig, ax = plt.subplots(figsize=(9, 7.2))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    _box(ax, 0.5, 0.94, 0.42, 0.07, f"Cases registered (n={f.cases_registered})")
    refused = f.files_refused
    if refused:  # files the import refused, by reason (imaging.ImportRefusal; issue 20)
        lines = [f"Files refused at import (n={sum(refused.values())})"]
        lines += [f"  {r}: {k}" for r, k in list(refused.items())[:4]]
        if len(refused) > 4:
            lines.append(f"  {len(refused) - 4} other reasons")
        _box(ax, 0.135, 0.94, 0.25, 0.04 + 0.025 * len(lines), "\n".join(lines), fc="#fbf4f4")
    reasons = f.exclusion_reasons
    ex_lines = [f"Excluded (n={f.cases_excluded})"] + [f"  {r}: {k}" for r, k in list(reasons.items())[:5]]
    if len(reasons) > 5:
        ex_lines.append(f"  {len(reasons) - 5} other reasons")
    ex_lines.append(f"Not enrolled (n={f.cases_not_enrolled})")
    _box(ax, 0.82, 0.83, 0.30, 0.04 + 0.025 * len(ex_lines), "\n".join(ex_lines), fc="#fbf4f4")
    ood = f.drafts_out_of_distribution
    enrolled = f"Cases enrolled (n={f.cases_enrolled})"
    if ood.cases_marked or ood.cases_withheld:  # inference/backends/ood.py
        enrolled += f"\nAI draft out of distribution: marked {ood.cases_marked}, withheld {ood.cases_withheld}"
    _box(ax, 0.5, 0.72, 0.42, 0.07, enrolled)
    _arrow(ax, 0.5, 0.905, 0.5, 0.755)
    _arrow(ax, 0.5, 0.83, 0.67, 0.83)
    arms = [a, c] + [x for x in by if x not in (a, c)]  # several AI arms (issue 20): one column each
    xs = np.linspace(0.25, 0.75, len(arms)) if len(arms) <= 2 else np.linspace(0.17, 0.83, len(arms))
    width = 0.42 if len(arms) <= 2 else 0.9 / len(arms)
    for x, arm in zip(xs, arms, strict=True):
        b = by.get(arm) or NO_ARM_FLOW  # an arm with no allocation or read counts zeros
        alloc = f"Allocated to {arm}\nreaders randomised: {b.readers_allocated}"
        if b.cases_allocated:
            alloc += f", cases randomised: {b.cases_allocated}"
        alloc += f"\ncases assigned: {b.cases_assigned}"
        _box(ax, x, 0.55, width, 0.10, alloc)
        _arrow(ax, 0.5, 0.685, x, 0.60)
        read = (f"Read: {b.reads_submitted} reads submitted\n"
                f"of {b.reads} ({b.cases_read} cases)\n"
                f"not submitted (excluded): {b.reads_not_submitted}")
        _box(ax, x, 0.36, width, 0.11, read)
        _arrow(ax, x, 0.50, x, 0.415)
    _box(ax, 0.5, 0.14, 0.62, 0.11,
         f"Rated: {f.ratings_submitted} expert ratings submitted of {f.rating_tasks} tasks\n"
         f"cases rated: {f.cases_rated}; not submitted (excluded): {f.ratings_not_submitted}\n"
         f"Analysed: quality {_analysed(results.quality.comparison)} cases, reading time "
         f"{_analysed(results.reading_time.comparison)} cases")
    for x in xs:
        _arrow(ax, x, 0.305, 0.5 + (x - 0.5) * 0.32, 0.195)
    ax.set_title("Flow of cases (CONSORT-style)")
    return _save(fig, path)


def _analysed(comparison: ArmComparison) -> Any:
    return comparison.n_pairs or comparison.n_units or 0


def draw_figures(results: AnalysisResults, tables: dict[str, pd.DataFrame], fig_dir: Path) -> dict[str, Path]:
    fig_dir.mkdir(parents=True, exist_ok=True)
    t = prepare_tables(tables)
    out = {
        "consort": fig_consort(results, fig_dir / "consort.png"),
        "reading_time": fig_reading_time(results, _submitted_reads(t), fig_dir / "reading_time.png"),
        "quality": fig_quality(results, t, fig_dir / "quality.png"),
        "preference": fig_preference(results, fig_dir / "preference.png"),
        "roc": fig_roc(results, t, fig_dir / "roc.png"),
        "reliability": fig_reliability(results, fig_dir / "reliability.png"),
        "forest": fig_forest(results, fig_dir / "forest.png"),
    }
    return out


def _submitted_reads(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    r = t.get("reads", pd.DataFrame())
    if "submitted" in r:
        r = r[pd.to_numeric(r["submitted"], errors="coerce").fillna(0) > 0]
    return {**t, "reads": r}


