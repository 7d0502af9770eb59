"""The report's preference and CONSORT figures as they were drawn at bb036ac, from the results' dict form
(``to_dict()``): the reference tests/analysis_app/test_figures_typed.py compares the typed figures with, byte for
byte. A frozen copy; not used by the application."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.figures import COLORS, _analysed, _arm_names, _arrow, _box, _ci, _empty, _save, plt
from analysis.pipeline import AnalysisResults


def fig_preference(results: AnalysisResults, path: Path) -> Path:
    a, c = _arm_names(results)
    pr = results.preference.pairs.to_dict()
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


def fig_consort(results: AnalysisResults, path: Path) -> Path:
    a, c = _arm_names(results)
    f = results.consort.to_dict()
    by = f.get("by_arm") or {}
    fig, ax = plt.subplots(figsize=(9, 7.2))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    _box(ax, 0.5, 0.94, 0.42, 0.07, f"Cases registered (n={f.get('cases_registered', 0)})")
    refused = f.get("files_refused") or {}
    if refused:  # files the import refused, by reason (imaging.ImportRefusal; issue 20)
        lines = [f"Files refused at import (n={sum(refused.values())})"]
        lines += [f"  {r}: {k}" for r, k in list(refused.items())[:4]]
        if len(refused) > 4:
            lines.append(f"  {len(refused) - 4} other reasons")
        _box(ax, 0.135, 0.94, 0.25, 0.04 + 0.025 * len(lines), "\n".join(lines), fc="#fbf4f4")
    reasons = f.get("exclusion_reasons") or {}
    ex_lines = [f"Excluded (n={f.get('cases_excluded', 0)})"] + [f"  {r}: {k}" for r, k in list(reasons.items())[:5]]
    if len(reasons) > 5:
        ex_lines.append(f"  {len(reasons) - 5} other reasons")
    ex_lines.append(f"Not enrolled (n={f.get('cases_not_enrolled', 0)})")
    _box(ax, 0.82, 0.83, 0.30, 0.04 + 0.025 * len(ex_lines), "\n".join(ex_lines), fc="#fbf4f4")
    ood = results.consort.drafts_out_of_distribution
    enrolled = f"Cases enrolled (n={f.get('cases_enrolled', 0)})"
    if ood.cases_marked or ood.cases_withheld:  # inference/backends/ood.py
        enrolled += f"\nAI draft out of distribution: marked {ood.cases_marked}, withheld {ood.cases_withheld}"
    _box(ax, 0.5, 0.72, 0.42, 0.07, enrolled)
    _arrow(ax, 0.5, 0.905, 0.5, 0.755)
    _arrow(ax, 0.5, 0.83, 0.67, 0.83)
    arms = [a, c] + [x for x in by if x not in (a, c)]  # several AI arms (issue 20): one column each
    xs = np.linspace(0.25, 0.75, len(arms)) if len(arms) <= 2 else np.linspace(0.17, 0.83, len(arms))
    width = 0.42 if len(arms) <= 2 else 0.9 / len(arms)
    for x, arm in zip(xs, arms, strict=True):
        b = by.get(arm) or {}
        alloc = f"Allocated to {arm}\nreaders randomised: {b.get('readers_allocated', 0)}"
        if b.get("cases_allocated"):
            alloc += f", cases randomised: {b['cases_allocated']}"
        alloc += f"\ncases assigned: {b.get('cases_assigned', 0)}"
        _box(ax, x, 0.55, width, 0.10, alloc)
        _arrow(ax, 0.5, 0.685, x, 0.60)
        read = (f"Read: {b.get('reads_submitted', 0)} reads submitted\n"
                f"of {b.get('reads', 0)} ({b.get('cases_read', 0)} cases)\n"
                f"not submitted (excluded): {b.get('reads_not_submitted', 0)}")
        _box(ax, x, 0.36, width, 0.11, read)
        _arrow(ax, x, 0.50, x, 0.415)
    _box(ax, 0.5, 0.14, 0.62, 0.11,
         f"Rated: {f.get('ratings_submitted', 0)} expert ratings submitted of {f.get('rating_tasks', 0)} tasks\n"
         f"cases rated: {f.get('cases_rated', 0)}; not submitted (excluded): {f.get('ratings_not_submitted', 0)}\n"
         f"Analysed: quality {_analysed(results.quality.comparison)} cases, reading time "
         f"{_analysed(results.reading_time.comparison)} cases")
    for x in xs:
        _arrow(ax, x, 0.305, 0.5 + (x - 0.5) * 0.32, 0.195)
    ax.set_title("Flow of cases (CONSORT-style)")
    return _save(fig, path)
