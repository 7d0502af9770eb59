"""The analysis report (no Django): report.html, results.json and matplotlib figures.

``render_report(results, tables, manifest, out_dir)`` writes into ``out_dir``:

- ``report.html``: self-contained page (inline CSS) referencing its figures as ``figures/<name>.png``;
- ``report-standalone.html``: the same page with the figures embedded (base64), for sending as one file;
- ``results.json``: the results dict the report was drawn from (the same numbers);
- ``figures/*.png``: reading times, quality, preference, ROC per finding, forest plot, CONSORT flow.

Masked exports show the arms as X and Y; nothing here knows which is which.
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from .pipeline import prepare_tables  # noqa: E402

FIGURES = ("consort", "reading_time", "quality", "preference", "roc", "forest")
COLORS = {"assisted": "#1f6f8b", "control": "#d08c2a", "tie": "#9aa0a6"}
DPI = 110


# -- formatting ---------------------------------------------------------------------------------------------
def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _f(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}"


def _pct(x: Any, nd: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{nd}f}%"


def _p(p: Any) -> str:
    if p is None:
        return "–"
    if p < 0.001:
        return "&lt;0.001"
    return f"{p:.3f}"


def _ci(ci: Any, nd: int = 2, pct: bool = False) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    if pct:
        return f"{_pct(ci[0])} to {_pct(ci[1])}"
    return f"{_f(ci[0], nd)} to {_f(ci[1], nd)}"


def _msd(d: dict | None, nd: int = 2) -> str:
    if not d or not d.get("n"):
        return "–"
    return f"{_f(d.get('mean'), nd)} ± {_f(d.get('sd'), nd)} (n={d['n']})"


def _miqr(d: dict | None, nd: int = 1) -> str:
    if not d or not d.get("n"):
        return "–"
    return f"{_f(d.get('median'), nd)} ({_f(d.get('q1'), nd)}–{_f(d.get('q3'), nd)})"


def _g(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


# -- figures ------------------------------------------------------------------------------------------------
def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _arm_names(results: dict) -> tuple[str, str]:
    lab = results.get("labels") or {}
    a = str(lab.get("assisted") or _g(results, "arms", "assisted") or "assisted")
    c = str(lab.get("control") or _g(results, "arms", "control") or "control")
    return a, c


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def fig_reading_time(results: dict, tables: dict[str, pd.DataFrame], path: Path) -> Path:
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


def fig_quality(results: dict, tables: dict[str, pd.DataFrame], path: Path) -> Path:
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


def fig_preference(results: dict, path: Path) -> Path:
    a, c = _arm_names(results)
    pr = _g(results, "preference", "pairs") or {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 2.8), gridspec_kw={"width_ratios": [3, 2]})
    n = pr.get("n_pairs") or 0
    if not n:
        _empty(ax1, "no pairwise ratings")
        _empty(ax2)
    else:
        parts = [(f"{a} preferred", pr.get("assisted_preferred", 0), COLORS["assisted"]),
                 ("no preference", pr.get("ties", 0), COLORS["tie"]),
                 (f"{c} preferred", pr.get("other_preferred", 0), COLORS["control"])]
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
        est, ci = pr.get("estimate"), pr.get("ci") or [None, None]
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


def fig_roc(results: dict, tables: dict[str, pd.DataFrame], path: Path) -> Path:
    findings = list(results.get("findings") or [])
    drafts, cases = tables.get("drafts", pd.DataFrame()), tables.get("cases", pd.DataFrame())
    models = _g(results, "ai_standalone", "models") or {}
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
                auc = _g(models, str(mv), code, "auc") or {}
                lab = f"{mv}: AUC {_f(auc.get('estimate'))} ({_ci(auc.get('ci'))})"
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


def _primary_forest_rows(results: dict) -> list[tuple[str, dict | None, dict | None]]:
    """Overall and per-subgroup arm effects from the primary models (arm x subgroup interactions)."""
    pr = results.get("primary") or {}
    sub = pr.get("subgroups") or {}
    rows = [("Overall (primary)", pr.get("quality"), pr.get("reading_time"))]
    for by in ("center", "reader_experience"):
        blk = sub.get(by) or {}
        qe = (blk.get("quality") or {}).get("effects") or {}
        te = (blk.get("reading_time") or {}).get("effects") or {}
        for lv in sorted(set(qe) | set(te)):
            name = f"Center {lv}" if by == "center" else f"{str(lv).capitalize()} readers"
            rows.append((name, qe.get(lv), te.get(lv)))
    return rows if len(rows) > 1 else []


def _forest_rows(results: dict) -> list[tuple[str, dict | None, dict | None]]:
    primary_rows = _primary_forest_rows(results)
    if primary_rows:
        return primary_rows
    q = results.get("quality") or {}
    t = results.get("reading_time") or {}
    rows = [("Overall", q.get("paired_t") or q.get("welch_t"), t.get("geometric_mean_ratio"))]
    sub = results.get("subgroups") or {}
    for c, blk in sorted((sub.get("center") or {}).items()):
        rows.append((f"Center {c}", blk.get("quality"), blk.get("time_ratio")))
    for lvl, blk in sorted((sub.get("reader_experience") or {}).items()):
        rows.append((f"{lvl.capitalize() or 'Unknown'} readers", blk.get("quality"), blk.get("time_ratio")))
    return rows


def fig_forest(results: dict, path: Path) -> Path:
    a, c = _arm_names(results)
    rows = _forest_rows(results)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 0.5 * len(rows) + 1.6), sharey=True)
    ys = np.arange(len(rows))[::-1]
    for ax, idx, ref, title, log in ((ax1, 1, 0.0, f"Quality difference ({a} - {c})", False),
                                     (ax2, 2, 1.0, f"Reading time ratio ({a} / {c}, log scale)", True)):
        any_pt = False
        for y, row in zip(ys, rows, strict=True):
            r = row[idx] or {}
            est, ci = r.get("estimate"), r.get("ci")
            if est is None:
                continue
            lo, hi = (ci if ci and ci[0] is not None and ci[1] is not None else (est, est))
            bold = row[0].startswith("Overall")
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
    ax1.set_yticklabels([r[0] for r in rows])
    fig.suptitle("Subgroups by center and reader experience (95% CI)")
    fig.tight_layout()
    return _save(fig, path)


def _box(ax, x: float, y: float, w: float, h: float, text: str, fc: str = "#f4f8fb") -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01,rounding_size=0.01",
                                fc=fc, ec="#1f3b4d", lw=1.1))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, wrap=True)


def _arrow(ax, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "-|>", "color": "#1f3b4d", "lw": 1.1})


def fig_consort(results: dict, path: Path) -> Path:
    a, c = _arm_names(results)
    f = results.get("consort") or {}
    by = f.get("by_arm") or {}
    fig, ax = plt.subplots(figsize=(9, 7.2))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    _box(ax, 0.5, 0.94, 0.42, 0.07, f"Cases registered (n={f.get('cases_registered', 0)})")
    reasons = f.get("exclusion_reasons") or {}
    ex_lines = [f"Excluded (n={f.get('cases_excluded', 0)})"] + [f"  {r}: {k}" for r, k in list(reasons.items())[:5]]
    if len(reasons) > 5:
        ex_lines.append(f"  {len(reasons) - 5} other reasons")
    ex_lines.append(f"Not enrolled (n={f.get('cases_not_enrolled', 0)})")
    _box(ax, 0.82, 0.83, 0.30, 0.04 + 0.025 * len(ex_lines), "\n".join(ex_lines), fc="#fbf4f4")
    _box(ax, 0.5, 0.72, 0.42, 0.07, f"Cases enrolled (n={f.get('cases_enrolled', 0)})")
    _arrow(ax, 0.5, 0.905, 0.5, 0.755)
    _arrow(ax, 0.5, 0.83, 0.67, 0.83)
    for x, arm in ((0.25, a), (0.75, c)):
        b = by.get(arm) or {}
        alloc = f"Allocated to {arm}\nreaders randomised: {b.get('readers_allocated', 0)}"
        if b.get("cases_allocated"):
            alloc += f", cases randomised: {b['cases_allocated']}"
        alloc += f"\ncases assigned: {b.get('cases_assigned', 0)}"
        _box(ax, x, 0.55, 0.42, 0.10, alloc)
        _arrow(ax, 0.5, 0.685, x, 0.60)
        read = (f"Read: {b.get('reads_submitted', 0)} reads submitted\n"
                f"of {b.get('reads', 0)} ({b.get('cases_read', 0)} cases)\n"
                f"not submitted (excluded): {b.get('reads_not_submitted', 0)}")
        _box(ax, x, 0.36, 0.42, 0.11, read)
        _arrow(ax, x, 0.50, x, 0.415)
    _box(ax, 0.5, 0.14, 0.62, 0.11,
         f"Rated: {f.get('ratings_submitted', 0)} expert ratings submitted of {f.get('rating_tasks', 0)} tasks\n"
         f"cases rated: {f.get('cases_rated', 0)}; not submitted (excluded): {f.get('ratings_not_submitted', 0)}\n"
         f"Analysed: quality {_g(results, 'quality', 'n_pairs') or _g(results, 'quality', 'n_units') or 0} "
         f"cases, reading time {_g(results, 'reading_time', 'n_pairs') or _g(results, 'reading_time', 'n_units') or 0}"
         f" cases")
    _arrow(ax, 0.25, 0.305, 0.42, 0.195)
    _arrow(ax, 0.75, 0.305, 0.58, 0.195)
    ax.set_title("Flow of cases (CONSORT-style)")
    return _save(fig, path)


def draw_figures(results: dict, tables: dict[str, pd.DataFrame], fig_dir: Path) -> dict[str, Path]:
    fig_dir.mkdir(parents=True, exist_ok=True)
    t = prepare_tables(tables)
    out = {
        "consort": fig_consort(results, fig_dir / "consort.png"),
        "reading_time": fig_reading_time(results, _submitted_reads(t), fig_dir / "reading_time.png"),
        "quality": fig_quality(results, t, fig_dir / "quality.png"),
        "preference": fig_preference(results, fig_dir / "preference.png"),
        "roc": fig_roc(results, t, fig_dir / "roc.png"),
        "forest": fig_forest(results, fig_dir / "forest.png"),
    }
    return out


def _submitted_reads(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    r = t.get("reads", pd.DataFrame())
    if "submitted" in r:
        r = r[pd.to_numeric(r["submitted"], errors="coerce").fillna(0) > 0]
    return {**t, "reads": r}


# -- HTML ---------------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b2730;max-width:1100px;margin:2em auto;
padding:0 1.2em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:2px solid #dfe7ec;
padding-bottom:.2em}h3{font-size:1.05em}
table{border-collapse:collapse;width:100%;margin:.6em 0 1em;font-size:.92em}
th,td{border-bottom:1px solid #e3e8ec;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f3f6f8;font-weight:600}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#5f6b74}.masked{background:#fff6e0;border:1px solid #f0d48a;padding:.6em .8em;border-radius:6px}
.warnings li{color:#8a4b00}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e3e8ec}
figcaption{font-size:.9em;color:#5f6b74}code{background:#f3f6f8;padding:0 .25em;border-radius:3px}
.kv td:first-child{width:14em;color:#5f6b74}
.results td:first-child{min-width:15em}.results td:last-child{white-space:normal;font-size:.85em;color:#5f6b74}
td.num.wrap{white-space:normal}
"""


def _row(cells: list[str], head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}{'' if head or i == 0 else ' class=num'}>{c}</{tag}>"
                            for i, c in enumerate(cells)) + "</tr>"


DESC = " <i>(descriptive: does not account for readers)</i>"
DESC_PREF = (" <i>(descriptive: ignores clustering by reader and case; 0.5 is not the null share when ties are "
             "possible)</i>")


def _flags(r: dict) -> str:
    conv = {None: "–", True: "yes", False: "<b>NO</b>"}[r.get("converged")]
    bnd = {None: "–", True: "<b>yes</b>", False: "no"}[r.get("boundary")]
    fb = f"; fallback: {_esc(r['fallback'])}" if r.get("fallback") else ""
    return f"converged {conv}, boundary {bnd}{fb}"


def primary_table(results: dict) -> str:
    """The declared primary analysis (``results['primary']``): one row per endpoint in testing order, with the
    model's df, convergence flags, fallback and the fixed-sequence verdict."""
    a, c = _arm_names(results)
    pr = results.get("primary") or {}
    rows = [_row(["Endpoint (testing order)", "Estimate (95% CI)", "p", "df", "Cases; readers per arm",
                  "Fit", "Hierarchy"], head=True)]
    spec = (("quality", f"Report quality, difference {_esc(a)} − {_esc(c)} (1–5)", 2, False),
            ("reading_time", f"Reading time, ratio of geometric means {_esc(a)} / {_esc(c)}", 3, False),
            ("preference", f"Share of cases where ≥ k experts prefer {_esc(a)}", 3, True))
    for key, label, nd, pct in spec:
        r = pr.get(key) or {}
        det = r.get("details") or {}
        est = f"{_pct(r.get('estimate')) if pct else _f(r.get('estimate'), nd)} ({_ci(r.get('ci'), nd, pct)})"
        if key == "reading_time" and det.get("percent_reduction") is not None:
            est += f"; reduction {_f(det['percent_reduction'], 1)}% ({_ci(det.get('percent_reduction_ci'), 1)}%)"
        if key == "preference" and det.get("null_share") is not None:
            est += (f"; null share {_pct(det['null_share'])} (k = {_esc(det.get('k'))}); decisive-pair rate "
                    f"{_pct(det.get('decisive_rate'))} ({_ci(det.get('decisive_rate_ci'), pct=True)}), "
                    f"p {_p(det.get('decisive_rate_p'))}")
        readers = ", ".join(f"{_esc(k)} {v}" for k, v in (r.get("n_readers") or {}).items())
        rows.append(_row([label, est, _p(r.get("p")), _f(r.get("df"), 1), f"{r.get('n_cases', 0)}; {readers}",
                          _flags(r) + (f"<br>{_esc(r['note'])}" if r.get("note") else ""),
                          ("confirmatory" if r.get("confirmatory") else "<b>not confirmatory</b>")
                          + f"<br><span class=muted>{_esc(r.get('hierarchy_note'))}</span>"]))
    return '<table class="results primary">' + "".join(rows) + "</table>"


def primary_methods(results: dict) -> str:
    pr = results.get("primary") or {}
    if not pr:
        return ""
    return (f'<p class="methods"><b>Methods (primary analysis).</b> {_esc(pr.get("methods"))}</p>'
            f'<p class="muted">{_esc(pr.get("hierarchy_text"))} Engine: {_esc(pr.get("engine"))}.</p>')


def results_table(results: dict) -> str:
    """The paper-style table of descriptive and secondary results (HTML); the case-level tests in it do not
    account for readers."""
    a, c = _arm_names(results)
    q, t, p = results.get("quality") or {}, results.get("reading_time") or {}, results.get("preference") or {}
    paired = results.get("paired_analysis", True)
    qtest = q.get("paired_t") if paired else q.get("welch_t")
    qnp = q.get("wilcoxon") if paired else q.get("mann_whitney")
    tnp = t.get("wilcoxon") if paired else t.get("mann_whitney")
    qmm, tmm = q.get("mixed_model") or {}, t.get("mixed_model") or {}
    gm, rr = t.get("geometric_mean_ratio") or {}, t.get("relative_reduction") or {}
    qd, qc, td = q.get("descriptive_reports") or {}, q.get("descriptive_case_means") or {}, t.get("descriptive") or {}
    pr, pm = p.get("pairs") or {}, p.get("panel_majority") or {}
    rows = [_row(["Outcome", f"{_esc(a)}", f"{_esc(c)}", f"Effect ({_esc(a)} vs {_esc(c)}), 95% CI", "p", "Test"],
                 head=True)]
    qt = qtest or {}
    rows.append(_row(["Report quality (1–5), all scores, mean ± SD", _msd(qd.get(a)), _msd(qd.get(c)), "", "", ""]))
    rows.append(_row(["Report quality, case-level mean ± SD", _msd(qc.get(a)), _msd(qc.get(c)),
                      f"difference {_f(qt.get('estimate'))} ({_ci(qt.get('ci'))})", _p(qt.get("p")),
                      _esc(qt.get("method", "")) + DESC]))
    rows.append(_row(["", "", "", "", _p((qnp or {}).get("p")), _esc((qnp or {}).get("method", "")) + DESC]))
    rows.append(_row(["Report quality, adjusted (primary)", "", "", f"difference {_f(qmm.get('estimate'))} "
                      f"({_ci(qmm.get('ci'))})", _p(qmm.get("p")), "Primary linear mixed model (see above)"]))
    rows.append(_row(["Reading time (s), mean ± SD", _msd(td.get(a), 1), _msd(td.get(c), 1),
                      f"relative reduction {_pct(rr.get('estimate'))} ({_ci(rr.get('ci'), pct=True)})",
                      _p(rr.get("p")), _esc(rr.get("method", "")) + DESC]))
    rows.append(_row(["Reading time (s), median (IQR)", _miqr(td.get(a)), _miqr(td.get(c)), "",
                      _p((tnp or {}).get("p")), _esc((tnp or {}).get("method", "")) + DESC]))
    rows.append(_row(["Reading time, ratio of geometric means", "", "",
                      f"{_f(gm.get('estimate'), 3)} ({_ci(gm.get('ci'), 3)})", _p(gm.get("p")),
                      _esc(gm.get("method", "")) + DESC]))
    rows.append(_row(["Reading time, adjusted ratio (primary)", "", "",
                      f"{_f(tmm.get('estimate'), 3)} ({_ci(tmm.get('ci'), 3)})",
                      _p(tmm.get("p")), "Primary mixed model on log time (see above)"]))
    if pr.get("n_pairs"):
        rows.append(_row([f"Preference for {_esc(a)} among decisive pairs",
                          f"{pr.get('assisted_preferred', 0)} of {pr.get('n', 0)}",
                          f"{pr.get('other_preferred', 0)} of {pr.get('n', 0)}",
                          f"{_pct(pr.get('estimate'))} ({_ci(pr.get('ci'), pct=True)})", _p(pr.get("p")),
                          "Clopper-Pearson CI; exact binomial test vs 0.5" + DESC_PREF]))
        rows.append(_row(["No preference (ties, reported apart)", f"{pr.get('ties', 0)} of {pr.get('n_pairs', 0)}",
                          "", _pct(pr.get("share_ties_of_all")), "", ""]))
        rows.append(_row([f"Cases where the panel majority preferred {_esc(a)}",
                          f"{pm.get('cases_assisted_preferred', 0)} of {pm.get('n', 0)}", "",
                          f"{_pct(pm.get('estimate'))} ({_ci(pm.get('ci'), pct=True)})", _p(pm.get("p")),
                          f"Panel majority (k = {_esc(pm.get('k'))})" + DESC_PREF]))
    return '<table class="results">' + "".join(rows) + "</table>"


def auc_table(results: dict) -> str:
    models = _g(results, "ai_standalone", "models") or {}
    rows = [_row(["Model", "Finding", "Positives / negatives", "AUC (95% CI, DeLong)", "Sensitivity (95% CI)",
                  "Specificity (95% CI)", "Threshold"], head=True)]
    for mv, per in models.items():
        for code, blk in per.items():
            auc, op = blk.get("auc") or {}, blk.get("operating_point") or {}
            rows.append(_row([_esc(mv), _esc(code.replace("_", " ")),
                              f"{auc.get('n_positive', '–')} / {auc.get('n_negative', '–')}",
                              f"{_f(auc.get('estimate'), 3)} ({_ci(auc.get('ci'), 3)})",
                              f"{_pct(op.get('sensitivity'))} ({_ci(op.get('sensitivity_ci'), pct=True)})",
                              f"{_pct(op.get('specificity'))} ({_ci(op.get('specificity_ci'), pct=True)})",
                              _f(op.get("threshold"))]))
    if len(rows) == 1:
        return '<p class="muted">No model drafts with a reference standard.</p>'
    return "<table>" + "".join(rows) + "</table>"


def reader_accuracy_table(results: dict) -> str:
    a, c = _arm_names(results)
    fnd = _g(results, "reader_accuracy", "findings") or {}
    # nested designs also carry the U-statistic (iMRMC) alternative: docs/primary_analysis.md, readers' accuracy
    alt = any(isinstance(b, dict) and b.get("mrmc_ustat") for b in fnd.values())
    head = ["Finding", f"Sensitivity {_esc(a)}", f"Sensitivity {_esc(c)}", f"Specificity {_esc(a)}",
            f"Specificity {_esc(c)}", "MRMC ΔAUC (95% CI), p"]
    rows = [_row([*head, "U-statistic ΔAUC (alternative)"] if alt else head, head=True)]

    def cell(m: dict) -> str:
        return f"{_f(m.get('estimate'), 3)} ({_ci(m.get('ci'), 3)}), {_p(m.get('p'))}" if m else "–"

    for code, blk in fnd.items():
        sa, sc = _g(blk, a, "sens_spec") or {}, _g(blk, c, "sens_spec") or {}
        cells = [_esc(code.replace("_", " ")), _pct(sa.get("sensitivity")), _pct(sc.get("sensitivity")),
                 _pct(sa.get("specificity")), _pct(sc.get("specificity")), cell(blk.get("mrmc") or {})]
        rows.append(_row([*cells, cell(blk.get("mrmc_ustat") or {})] if alt else cells))
    if len(rows) == 1:
        return '<p class="muted">No reader calls with a reference standard.</p>'
    return "<table>" + "".join(rows) + "</table>"


def agreement_table(results: dict) -> str:
    ag = results.get("agreement") or {}
    kq = ag.get("quality_kappa_quadratic") or {}
    rows = [_row(["Measure", "Estimate", "95% CI", "n"], head=True),
            _row(["Quality: quadratic weighted kappa, mean over expert pairs", _f(kq.get("mean")), "–",
                  f"{kq.get('n_pairs', 0)} pairs"])]
    for form, r in (ag.get("quality_icc") or {}).items():
        rows.append(_row([f"Quality: {_esc(form)}", _f(r.get("estimate")), _ci(r.get("ci")), str(r.get("n", 0))]))
    fk = ag.get("preference_fleiss_kappa") or {}
    rows.append(_row(["Preference: Fleiss' kappa", _f(fk.get("estimate")), _ci(fk.get("ci")), str(fk.get("n", 0))]))
    return "<table>" + "".join(rows) + "</table>"


def blinding_table(results: dict) -> str:
    """Bang's index per arm and James's index of the experts' guesses (analysis/stats/blinding.py)."""
    b = results.get("blinding") or {}
    if not b.get("n"):
        return f'<p class="muted">{_esc(b.get("note") or "No blinding answers.")}</p>'
    rows = [_row(["Index", "Estimate", "95% CI", "n"], head=True)]
    for arm, r in (b.get("by_arm") or {}).items():
        rows.append(_row([f"Bang, arm {_esc(arm)}", _f(r.get("estimate"), 3), _ci(r.get("ci"), 3), str(r.get("n"))]))
    for pos, r in (b.get("by_position") or {}).items():
        rows.append(_row([f"Bang, {_esc(pos)}", _f(r.get("estimate"), 3), _ci(r.get("ci"), 3), str(r.get("n"))]))
    j = b.get("james") or {}
    rows.append(_row(["James (trial)", _f(j.get("estimate"), 3), _ci(j.get("ci"), 3), str(j.get("n"))]))
    notes = "".join(f'<p class="muted">{_esc(n)}</p>' for n in b.get("notes") or [])
    return "<table>" + "".join(rows) + "</table>" + notes


def subgroup_table(results: dict) -> str:
    rows = [_row(["Subgroup", "Quality difference (95% CI)", "p", "Time ratio (95% CI)", "p"], head=True)]
    for name, qq, tt in _forest_rows(results):
        qq, tt = qq or {}, tt or {}
        rows.append(_row([_esc(name), f"{_f(qq.get('estimate'))} ({_ci(qq.get('ci'))})", _p(qq.get("p")),
                          f"{_f(tt.get('estimate'), 3)} ({_ci(tt.get('ci'), 3)})", _p(tt.get("p"))]))
    return "<table>" + "".join(rows) + "</table>"


def methods_text(results: dict) -> str:
    a, c = _arm_names(results)
    paired = results.get("paired_analysis", True)
    design = results.get("design", "")
    k = _g(results, "preference", "panel_majority", "k")
    qtest = ("a paired t-test and a Wilcoxon signed-rank test on case-level mean scores (each case read in both arms)"
             if paired else "Welch's t-test and a Mann-Whitney U test on case-level mean scores (case-randomised)")
    ttest = ("a paired t-test on log case-level times (the ratio of geometric means) and a Wilcoxon signed-rank test "
             "as sensitivity analysis" if paired else
             "Welch's t-test on log times (ratio of geometric means) and a Mann-Whitney U test as sensitivity analysis")
    parts = [
        f"<p>Design: <b>{_esc(design.replace('_', ' '))}</b>. Arms compared: <b>{_esc(a)}</b> versus <b>{_esc(c)}</b>;"
        f" differences are {_esc(a)} − {_esc(c)}, ratios {_esc(a)} / {_esc(c)}. The analysis set is the enrolled, "
        "non-excluded cases; reads and ratings that were not submitted are excluded and counted in the flow diagram."
        "</p>",
        f"<p><b>Report quality</b> (1–5, each report scored by each expert of the panel): mean ± SD per arm; {qtest} "
        "(descriptive: case-level tests do not account for readers); the primary analysis is the linear mixed model "
        "described above.</p>",
        f"<p><b>Reading time</b> (active seconds reported by the browser): mean ± SD and median (IQR) per arm; "
        f"relative reduction of the mean 1 − mean({_esc(a)})/mean({_esc(c)}) with a delta-method 95% CI on the log "
        f"scale; {ttest} (descriptive); the primary analysis is the mixed model on log time described above.</p>",
        "<p><b>Preference</b> (descriptive): share of decisive pairs in which the expert preferred the "
        f"{_esc(a)} report, ties (no preference) reported separately; Clopper-Pearson exact 95% CI; exact binomial "
        f"test against 0.5. Case-level panel majority with k = {_esc(k)} experts. These binomial tests treat "
        "judgements as independent; the primary preference analysis above accounts for readers and ties.</p>",
        "<p><b>Model standalone accuracy</b>: empirical AUC per finding against the reference standard with DeLong "
        "variance and 95% CI; sensitivity and specificity at the operating point with Clopper-Pearson CIs. "
        "<b>Readers' accuracy</b>: sensitivity and specificity per arm; in crossover designs the Obuchowski-Rockette "
        "MRMC analysis (jackknife covariance, Hillis degrees of freedom).</p>",
        "<p><b>Agreement</b> between experts: quadratic weighted Cohen's kappa per expert pair, intraclass "
        "correlations (Shrout-Fleiss), Fleiss' kappa for preferences. <b>Subgroups</b> by center and reader "
        "experience (forest plot): arm × subgroup interactions in the primary mixed models where available, "
        "descriptive. The primary endpoints are tested in a fixed sequence (see above); all other tests are "
        "two-sided at α = 0.05 without multiplicity adjustment.</p>",
    ]
    return "\n".join(parts)


def manifest_table(manifest: dict) -> str:
    rows = []
    for key, label in (("trial", "Trial"), ("design", "Design"), ("status", "Trial status at export"),
                       ("arms_masked", "Arms masked"), ("assisted_arm", "Assisted arm"),
                       ("generated_at", "Export generated"), ("code_version", "Code version"),
                       ("data_sha256", "Data sha256")):
        v = manifest.get(key)
        if key == "arms_masked":
            v = "yes (X/Y)" if v else "no"
        rows.append(_row([label, f"<code>{_esc(v)}</code>" if key in ("data_sha256", "code_version") else _esc(v)]))
    for name, info in (manifest.get("tables") or {}).items():
        rows.append(_row([f"{name}.csv", f"{info.get('rows')} rows, sha256 <code>{_esc(info.get('sha256'))}</code>"]))
    return '<table class="kv">' + "".join(rows) + "</table>"


def _collect_warnings(results: dict) -> list[str]:
    out = list(results.get("warnings") or [])
    for sec, label in (("quality", "Quality mixed model"), ("reading_time", "Reading-time mixed model")):
        mm = _g(results, sec, "mixed_model") or {}
        for w in mm.get("warnings") or []:
            out.append(f"{label}: {w}")
        if mm.get("note"):
            out.append(f"{label}: {mm['note']}")
        if mm.get("converged") is False:
            out.append(f"{label}: the optimiser did not report convergence; read the adjusted estimate with care.")
    return list(dict.fromkeys(out))


CAPTIONS = {
    "consort": "Flow of cases, reads and ratings (CONSORT-style).",
    "reading_time": "Distribution of active reading time per read, by arm.",
    "quality": "Distribution of expert quality scores by arm.",
    "preference": "Expert preference between the two reports of a case (ties apart) and the preference rate with "
                  "its Clopper-Pearson 95% CI.",
    "roc": "Model standalone ROC curve per finding against the reference standard.",
    "forest": "Quality difference and reading-time ratio by center and reader experience (arm × subgroup "
              "interactions in the primary mixed models; descriptive).",
}


def build_html(results: dict, manifest: dict, figures: dict[str, str]) -> str:
    """``figures``: name -> img src (relative path or data URI)."""
    a, c = _arm_names(results)
    masked = bool((results.get("labels") or {}).get("masked") or manifest.get("arms_masked"))
    title = f"Analysis report · {manifest.get('trial') or ''}"
    warn = _collect_warnings(results)

    def fig(name: str) -> str:
        if name not in figures:
            return ""
        return (f'<figure id="fig-{name}"><img src="{_esc(figures[name])}" alt="{_esc(CAPTIONS[name])}">'
                f"<figcaption>{_esc(CAPTIONS[name])}</figcaption></figure>")

    body = [
        f"<h1>{_esc(title)}</h1>",
        f'<p class="muted">Design {_esc(results.get("design"))} · data sha256 '
        f'<code>{_esc(str(manifest.get("data_sha256", ""))[:16])}…</code> · code {_esc(manifest.get("code_version"))}'
        "</p>",
    ]
    if masked:
        body.append('<p class="masked"><b>Arms are masked.</b> The trial is not locked: the arms are shown as '
                    f"<b>{_esc(a)}</b> and <b>{_esc(c)}</b>, and this report does not know which one is AI-assisted."
                    "</p>")
    body += [
        "<h2>Primary results (declared analysis)</h2>", primary_table(results), primary_methods(results),
        "<h2>Secondary and descriptive results</h2>", results_table(results),
        fig("consort"), fig("quality"), fig("reading_time"), fig("preference"),
        "<h2>Model standalone accuracy</h2>", auc_table(results), fig("roc"),
        "<h2>Readers' accuracy</h2>", reader_accuracy_table(results),
        "<h2>Agreement between experts</h2>", agreement_table(results),
        "<h2>Subgroups</h2>", subgroup_table(results), fig("forest"),
        "<h2>Blinding of the experts</h2>", blinding_table(results),
        "<h2>Methods</h2>", methods_text(results),
        "<h2>Warnings</h2>",
        ('<ul class="warnings">' + "".join(f"<li>{_esc(w)}</li>" for w in warn) + "</ul>") if warn
        else '<p class="muted">None.</p>',
        "<h2>Data manifest</h2>", manifest_table(manifest),
        '<p class="muted">The same numbers are in <code>results.json</code>; the analysis can be reproduced from the '
        "export (CSV tables, data dictionary and manifest).</p>",
    ]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{''.join(body)}</body></html>")


def render_report(results: dict, tables: dict[str, pd.DataFrame], manifest: dict, out_dir: Path) -> Path:
    """Write report.html, report-standalone.html, results.json and figures/*.png into ``out_dir``; return the
    path of report.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # key order kept: the primary block comes first
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    paths = draw_figures(results, tables, out_dir / "figures")
    rel = {name: f"figures/{p.name}" for name, p in paths.items()}
    report = out_dir / "report.html"
    report.write_text(build_html(results, manifest, rel), encoding="utf-8")
    embedded = {name: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for name, p in paths.items()}
    (out_dir / "report-standalone.html").write_text(build_html(results, manifest, embedded), encoding="utf-8")
    return report
