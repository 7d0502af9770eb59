"""Reliability diagrams in the report's AI section (issue 16 item 3, issue 21 item 3): per model and finding, the
raw probabilities' bins and the cross-fitted Platt and isotonic recalibrations' bins (before and after
calibration), drawn from the trial's data and checked against the bins computed here from the tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.figures import fig_reliability, reliability_panels
from analysis.pipeline import analyse_results
from analysis.report import render_report
from analysis.stats.calibration import cross_fitted, reliability
from analysis.stats.synthetic import make_trial_tables

PNG = b"\x89PNG\r\n\x1a\n"
MANIFEST = {"trial": "REL", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
            "preference_majority": 2}


def _points(summary) -> list[float]:
    return [v for b in summary.bins if b.count for v in (b.mean_predicted, b.observed_rate, b.count)]


def _flat(series) -> list[float]:
    return [v for point in series for v in point]


def test_the_panels_are_the_trials_bins_before_and_after_calibration(tmp_path):
    tables = make_trial_tables(n_cases=60, n_readers=4, n_experts=2, n_centers=2, seed=11)
    results = analyse_results(tables, MANIFEST)
    panels = reliability_panels(results)
    drafts, cases = tables["drafts"].copy(), tables["cases"].copy()
    drafts["case_code"], cases["case_code"] = drafts["case_code"].astype(str), cases["case_code"].astype(str)
    assert {p.finding for p in panels} == set(results.findings)
    checked = 0
    for panel in panels:
        if panel.note:
            assert panel.series == {}
            continue
        g = drafts[drafts["model_version"].astype(str) == panel.model]
        p = pd.to_numeric(g.groupby("case_code")[f"prob_{panel.finding}"].mean(), errors="coerce")
        y = pd.to_numeric(cases.set_index("case_code")[f"ref_{panel.finding}"], errors="coerce")
        j = pd.concat([y.rename("y"), p.rename("p")], axis=1, join="inner").dropna()
        pv, yv = j["p"].clip(0, 1).to_numpy(), j["y"].astype(int).to_numpy()
        assert panel.n == len(j)
        raw = reliability(pv, yv)
        assert _flat(panel.series["raw"]) == pytest.approx(_points(raw))
        assert panel.ece["raw"] == pytest.approx(raw.ece)
        for method in ("platt", "isotonic"):
            after = reliability(cross_fitted(pv, yv, method, 5), yv)
            assert _flat(panel.series[method]) == pytest.approx(_points(after)), method
            assert panel.ece[method] == pytest.approx(after.ece)
        assert sum(k for *_, k in panel.series["raw"]) == len(j)
        checked += 1
    assert checked >= 3
    path = fig_reliability(results, tmp_path / "reliability.png")
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 10_000


def test_the_report_shows_the_diagram_after_the_calibration_table(tmp_path):
    tables = make_trial_tables(n_cases=40, n_readers=4, n_experts=2, n_centers=2, seed=5)
    html = render_report(analyse_results(tables, MANIFEST), tables, MANIFEST, tmp_path).read_text()
    calibration = html.index("<h2>Model calibration</h2>")
    figure = html.index('src="figures/reliability.png"')
    assert calibration < figure < html.index("<h2>Readers' accuracy</h2>")
    assert "Reliability diagram per finding" in html
    assert (tmp_path / "figures" / "reliability.png").read_bytes()[:8] == PNG


def test_a_finding_too_rare_to_calibrate_is_a_note_not_a_curve(tmp_path):
    tables = make_trial_tables(n_cases=40, n_readers=4, n_experts=2, n_centers=2, seed=5)
    codes = [c[len("ref_"):] for c in tables["cases"].columns if c.startswith("ref_")]
    rare = codes[0]
    cases = tables["cases"].copy()
    cases[f"ref_{rare}"] = np.where(np.arange(len(cases)) < 2, 1, 0)
    results = analyse_results({**tables, "cases": cases}, MANIFEST)
    panel = next(p for p in reliability_panels(results) if p.finding == rare)
    assert panel.series == {} and "at least 5" in panel.note
    assert fig_reliability(results, tmp_path / "r.png").read_bytes()[:8] == PNG


def test_calibrated_probabilities_shown_to_readers_are_a_series_of_their_own(tmp_path):
    tables = make_trial_tables(n_cases=60, n_readers=4, n_experts=2, n_centers=2, seed=11)
    drafts = tables["drafts"].copy()
    codes = [c[len("prob_"):] for c in drafts.columns if c.startswith("prob_")]
    code = codes[1]
    # drafts made after a calibration (the later half of the cases) carry calibrated values, the others none
    later = drafts["case_code"].astype(str).isin(sorted(drafts["case_code"].astype(str).unique())[30:])
    p = pd.to_numeric(drafts[f"prob_{code}"], errors="coerce").clip(1e-6, 1 - 1e-6)
    drafts[f"calprob_{code}"] = np.where(later, 1 / (1 + np.exp(-(1.7 * np.log(p / (1 - p)) - 0.4))), np.nan)
    results = analyse_results({**tables, "drafts": drafts}, MANIFEST)
    panel = next(x for x in reliability_panels(results) if x.finding == code)
    d = drafts.assign(case_code=drafts["case_code"].astype(str))
    cases = tables["cases"].assign(case_code=tables["cases"]["case_code"].astype(str)).set_index("case_code")
    shown = pd.to_numeric(d.groupby("case_code")[f"calprob_{code}"].mean(), errors="coerce")
    j = pd.concat([cases[f"ref_{code}"].rename("y"), shown.rename("p")], axis=1, join="inner").dropna()
    assert len(j) == 30
    want = reliability(j["p"].to_numpy(), j["y"].astype(int).to_numpy())
    assert _flat(panel.series["shown"]) == pytest.approx(_points(want))
    assert panel.ece["shown"] == pytest.approx(want.ece)
    other = next(x for x in reliability_panels(results) if x.finding == codes[2])
    assert "shown" not in other.series  # no calibrated values for that finding
    assert fig_reliability(results, tmp_path / "r.png").read_bytes()[:8] == PNG
