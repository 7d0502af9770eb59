"""The report's AI-evaluation sections (issue 20) as an HTML fragment built from ``results['ai_evaluation']``
(analysis/evaluation.py): the arena ranking, the human-AI interaction and the report-text metrics. Every value is
escaped; the fragment holds no script or style of its own (the report's CSS applies)."""
from __future__ import annotations

import html
import math
from typing import Any


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _f(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}"


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _p(p: Any) -> str:
    return "–" if p is None else ("&lt;0.001" if p < 0.001 else f"{p:.3f}")


def _ci(ci: Any, nd: int = 2, pct: bool = False) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    return f"{_pct(ci[0])} to {_pct(ci[1])}" if pct else f"{_f(ci[0], nd)} to {_f(ci[1], nd)}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{c}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td{'' if i == 0 else ' class=num'}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
                for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


def arena_html(arena: dict | None) -> str:
    if not arena:
        return '<p class="muted">No pairwise judgements.</p>'
    r, pb, tr = arena["ranking"], arena["position_bias"], arena["tie_rate"]
    rows = [[_e(i["item"]) + (" (reference)" if i["item"] == r["reference"] else ""), str(i["rank"]),
             "–" if not i.get("rank_ci") else f"{i['rank_ci'][0]}–{i['rank_ci'][1]}",
             _f(i["log_strength"]), _ci(i["ci"]), _pct(i["p_beats_reference"]),
             f"{i['wins']} / {i['losses']} / {i['ties']}"] for i in r["items"]]
    tie_name = {"davidson": "Davidson's tie parameter ν", "rao_kupper": "Rao-Kupper's θ"}.get(r["tie_model"], "")
    return "".join([
        _table(["Arm or model", "Rank", "Rank 95% CI", "Log-strength", "95% CI", "P(beats reference)",
                "Wins / losses / ties"], rows),
        f"<p>{_e(r['method'])}, maximum likelihood; {r['n_comparisons']} judgements, {r['n_ties']} ties. "
        f"Intervals: percentile bootstrap ({r['n_bootstrap']} resamples of {_e(' and '.join(r['bootstrap_clusters']))}"
        f"; {r['n_bootstrap_failed']} failed). "
        + (f"{tie_name} {_f(r['tie_parameter'])} ({_ci(r['tie_parameter_ci'])}). " if tie_name else "")
        + f"Position effect (left report's log-strength bonus) {_f(r['position_effect'])} "
        f"({_ci(r['position_effect_ci'])}).{' <b>' + _e(r['note']) + '.</b>' if r.get('note') else ''}</p>",
        f"<p>Left (A) report preferred in {pb['left_preferred']} of {pb['n_decisive']} decisive judgements "
        f"({_pct(pb['share_left'])}, {_ci(pb['ci'], pct=True)}; binomial p {_p(pb['p'])}). "
        f"Tie rate {_pct(tr['rate'])} ({_ci(tr['ci'], pct=True)}) of {tr['n']}.</p>",
    ])


def interaction_html(inter: dict) -> str:
    if not inter or not inter.get("n_reads_with_draft"):
        notes = "; ".join((inter or {}).get("notes") or [])
        return f'<p class="muted">No read with a draft to analyse{": " + _e(notes) if notes else ""}.</p>'
    t, m = inter["totals"], inter["per_read_means"]
    parts = [
        f"<p>{inter['n_reads_with_draft']} reads showed a draft. Over {t['n_calls']} finding calls: the AI called "
        f"{t['suggested']} present; readers kept {t['kept']}, removed {t['removed']} and added {t['added']}. "
        f"Per read: {_f(m.get('suggested'), 1)} suggested, {_f(m.get('removed'), 2)} removed, "
        f"{_f(m.get('added'), 2)} added; text edited in {_pct(m.get('text_edited'))} "
        f"(mean edit distance {_f(m.get('edit_distance'), 3)}).</p>",
        _table(["Finding", "AI present → reader absent", "AI absent → reader present"],
               [[_e(o["finding"]),
                 f"{o['ai_present_reader_absent']['k']}/{o['ai_present_reader_absent']['n']} "
                 f"({_pct(o['ai_present_reader_absent']['rate'])})",
                 f"{o['ai_absent_reader_present']['k']}/{o['ai_absent_reader_present']['n']} "
                 f"({_pct(o['ai_absent_reader_present']['rate'])})"] for o in inter["overrides"]]),
    ]
    if inter.get("automation_bias"):
        parts.append("<h3>Automation bias</h3>" + _table(
            ["AI call", "Assisted accuracy", "Unassisted, same cells", "Difference"],
            [["right" if c["ai_correct"] else "wrong",
              f"{c['assisted']['k']}/{c['assisted']['n']} ({_pct(c['assisted']['rate'])}; "
              f"{_ci(c['assisted']['ci'], pct=True)})",
              f"{c['unassisted']['k']}/{c['unassisted']['n']} ({_pct(c['unassisted']['rate'])}; "
              f"{_ci(c['unassisted']['ci'], pct=True)})",
              _pct(c["difference"])] for c in inter["automation_bias"]]))
    for lc in inter.get("learning_curves") or []:
        slopes = "; ".join(f"{_e(arm)} {_f(s['per_10_reads'], 3)} (SE {_f(s['se'], 3)}, p {_p(s['p'])})"
                           for arm, s in lc["slopes"].items())
        parts.append(f"<p>Learning curve, {_e(lc['outcome'])}: within-reader change per 10 reads: {slopes}.</p>")
    parts.append(f'<p class="muted">{_e("; ".join(inter.get("notes") or []))}</p>')
    return "".join(parts)


def text_metrics_html(tm: dict) -> str:
    if not tm or not tm.get("final_by_arm"):
        return f'<p class="muted">{_e("; ".join((tm or {}).get("notes") or ["No text metrics."]))}</p>'
    rows = [[f"final reports, {_e(arm)}", str(v["n"]), _f(v["bleu"], 3), _f(v["rouge_l"], 3), _f(v["meteor"], 3)]
            for arm, v in tm["final_by_arm"].items()]
    if tm.get("drafts"):
        d = tm["drafts"]
        rows.append(["drafts", str(d["n"]), _f(d["bleu"], 3), _f(d["rouge_l"], 3), _f(d["meteor"], 3)])
    comp = [[_e(c["metric"]), f"{_e(c['label_a'])} vs {_e(c['label_b'])}", str(c["n"]), _f(c["difference"], 4),
             _p(c["p"]) + (" (exact)" if c["exact"] else "")] for c in tm.get("comparisons") or []]
    return "".join([
        _table(["Reports", "n", "BLEU", "ROUGE-L", "METEOR"], rows),
        _table(["Metric", "Comparison", "Pairs", "Mean difference", "p (approximate randomisation)"], comp)
        if comp else "",
        f'<p class="muted">Against the reference report; {_e(tm.get("meteor_variant"))}. '
        f'{_e("; ".join(tm.get("notes") or []))}</p>',
    ])


def ai_evaluation_html(results: dict) -> str:
    """The three sections, each under its own heading; empty when the results hold no ``ai_evaluation``."""
    ev = results.get("ai_evaluation")
    if not ev:
        return ""
    return "".join([
        "<h2>Report arena: ranking from pairwise judgements</h2>", arena_html(ev.get("arena")),
        "<h2>Human-AI interaction</h2>", interaction_html(ev.get("interaction") or {}),
        "<h2>Report-text metrics</h2>", text_metrics_html(ev.get("text_metrics") or {}),
    ])
