"""The declared primary analysis (analysis.stats.primary): estimates, null behaviour, ties, fallback, order."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.pipeline import analyse_results
from analysis.report import render_report
from analysis.stats.primary import (
    PrimaryResult,
    apply_hierarchy,
    fit_with_fallback,
    preference_frame,
    preference_primary,
    primary_analysis,
    quality_primary,
    reading_time_primary,
    subgroup_analysis,
)
from analysis.stats.proportions import panel_majority
from tests.analysis.primary_sim import simulate

REPO = Path(__file__).resolve().parents[2]
ARMS = {"assisted": "ai_assisted", "control": "unassisted"}


def test_known_effects_are_recovered_paired_by_case():
    tables = simulate("paired_by_case", n_cases=200, n_readers=16, n_centers=2, quality_effect=0.5,
                      log_time_ratio=math.log(0.8), reader_sd=0.15, seed=11)
    block = primary_analysis(tables, design="paired_by_case", majority_k=3, **ARMS, n_permutations=200,
                             rng=np.random.default_rng(1), subgroups=False)
    q, t, p = block.quality, block.reading_time, block.preference
    assert q.ci[0] < 0.5 < q.ci[1] and q.estimate == pytest.approx(0.5, abs=0.15)
    assert t.ci[0] < 0.8 < t.ci[1] and t.estimate == pytest.approx(0.8, abs=0.12)
    assert t.details.percent_reduction == pytest.approx(100 * (1 - t.estimate))
    assert q.n_readers == {"ai_assisted": 8, "unassisted": 8} and q.n_cases == 200
    # Readers nested in arms: the arm effect is tested on reader-level df, far below the 2000 scores.
    assert 3 < q.df < 40 and q.p < 0.05 and q.converged
    assert set(q.variance_components) >= {"reader", "case", "report", "expert", "residual"}
    assert "(1|report)" in q.details.model and "Satterthwaite" in q.method
    # Better reports win the experts' preference: the share beats its null share.
    assert p.estimate > p.details.null_share and p.p < 0.05
    assert 0 <= p.details.decisive_rate_ci[0] < p.details.decisive_rate < p.details.decisive_rate_ci[1]
    assert block.quality.confirmatory and block.reading_time.confirmatory and block.preference.confirmatory


@pytest.mark.parametrize("design", ["crossover", "case_randomised"])
def test_other_designs_use_their_own_model(design):
    tables = simulate(design, n_cases=40, n_readers=4, n_centers=2, quality_effect=0.5,
                      log_time_ratio=math.log(0.8), seed=5)
    block = primary_analysis(tables, design=design, majority_k=3, **ARMS, n_permutations=0, subgroups=False)
    q = block.quality
    assert q.estimate is not None and q.ci[0] < q.estimate < q.ci[1]
    declared = "(1|reader:arm)"
    assert declared in q.method and design.replace("_", " ").split()[0] in block.methods
    if design == "case_randomised":
        assert block.preference.estimate is None and "no pairwise" in block.preference.note
    else:
        assert block.preference.estimate is not None


def test_no_effect_gives_roughly_uniform_p_values():
    """A batch of null trials (reader and case effects, quality-driven preferences with ties)."""
    ps = {"quality": [], "preference": [], "decisive": []}
    for seed in range(24):
        tables = simulate("paired_by_case", n_cases=40, n_readers=8, n_centers=2, n_experts=3, seed=100 + seed)
        ps["quality"].append(quality_primary(tables, design="paired_by_case", **ARMS).p)
        pref = preference_primary(tables, design="paired_by_case", majority_k=2, **ARMS)
        ps["preference"].append(pref.p)
        ps["decisive"].append(pref.details.decisive_rate_p)
    for name, values in ps.items():
        v = np.array(values, dtype=float)
        assert np.isfinite(v).all(), name
        assert stats.kstest(v, "uniform").pvalue > 0.01, (name, np.sort(v))
        assert (v < 0.05).mean() <= 0.2, (name, np.sort(v))


def _tie_ratings(n_cases: int, n_readers: int, p_each: float, seed: int) -> dict[str, pd.DataFrame]:
    """Experts judge independently: assisted / control preferred with p_each each, no preference otherwise."""
    rng = np.random.default_rng(seed)
    rows = []
    half = n_readers // 2
    for i in range(n_cases):
        ra, rc = f"A{rng.integers(half)}", f"C{rng.integers(half)}"
        for e in range(5):
            u = rng.random()
            pref = "A" if u < p_each else ("B" if u < 2 * p_each else "none")
            rows.append({"case_code": f"C{i}", "center": "S0", "expert": f"E{e}", "arm_a": "ai_assisted",
                         "arm_b": "unassisted", "reader_a": ra, "reader_b": rc, "preference": pref,
                         "quality_a": 4, "quality_b": 4})
    return {"ratings": pd.DataFrame(rows)}


def test_preference_null_share_accounts_for_ties():
    # Null with ties: P(at least 3 of 5 prefer assisted) = P(Bin(5, 0.4) >= 3) = 0.31744, not 0.5.
    analytic = float(stats.binom.sf(2, 5, 0.4))
    assert analytic == pytest.approx(0.31744)
    tables = _tie_ratings(n_cases=1500, n_readers=20, p_each=0.4, seed=3)
    res = preference_primary(tables, design="paired_by_case", majority_k=3, **ARMS)
    assert res.details.null_share == pytest.approx(analytic, abs=0.02)
    assert res.estimate == pytest.approx(analytic, abs=0.03)
    assert res.ci[0] < analytic < res.ci[1] and res.p > 0.001
    assert res.details.decisive_rate == pytest.approx(0.5, abs=0.03)
    # The old binomial test against 0.5 rejects this null: the share of 'at least k' is below 0.5 with ties.
    r = tables["ratings"]
    old = panel_majority(r.assign(preferred=np.where(r["preference"] == "A", "assisted", "other")), k=3)
    assert old.p < 1e-6


def test_preference_counts_and_null_share_by_hand():
    # Three cases, panel of 3, k = 2: (wins, losses) = (2, 0), (1, 1) + a tie, (0, 3).
    prefs = {"C1": ["A", "A", "none"], "C2": ["A", "B", "none"], "C3": ["B", "B", "B"]}
    rows = [{"case_code": c, "center": "S0", "expert": f"E{j}", "arm_a": "ai_assisted", "arm_b": "unassisted",
             "reader_a": "R1", "reader_b": "R2", "preference": p} for c, ps in prefs.items() for j, p in enumerate(ps)]
    u = preference_frame({"ratings": pd.DataFrame(rows)}, "ai_assisted", "unassisted", 2).set_index("case")
    assert u["wins"].tolist() == [2, 1, 0] and u["losses"].tolist() == [0, 1, 3] and u["ties"].tolist() == [1, 1, 0]
    assert u["h"].tolist() == [1, 0, 0] and u["h_control"].tolist() == [0, 0, 1]
    # share 1/3, control share 1/3: null share (1/3 + 1/3) / 2 = 1/3 (ties make it < 0.5)


def test_randomisation_test_sensitivity_is_reported_and_reproducible():
    tables = simulate("paired_by_case", n_cases=60, n_readers=8, n_centers=2, seed=4)
    kw = {"design": "paired_by_case", "majority_k": 3, **ARMS, "n_permutations": 300}
    a = preference_primary(tables, **kw, rng=np.random.default_rng(9)).details.randomisation_test
    b = preference_primary(tables, **kw, rng=np.random.default_rng(9)).details.randomisation_test
    assert a == b and a.n_permutations == 300 and 1 / 301 <= a.p <= 1


def _flat_reader_times(seed: int) -> dict[str, pd.DataFrame]:
    """Reads whose readers have identical mean log time within their arm: the reader variance is exactly 0."""
    tables = simulate("paired_by_case", n_cases=60, n_readers=8, n_centers=1, seed=seed)
    r = tables["reads"].copy()
    lg = np.log(r["active_seconds"])
    lg = lg - lg.groupby(r["reader"]).transform("mean") + lg.groupby(r["arm"]).transform("mean")
    return {"reads": r.assign(active_seconds=np.exp(lg))}


def test_boundary_fit_triggers_the_declared_fallback_and_is_recorded():
    res = reading_time_primary(_flat_reader_times(2), design="paired_by_case", **ARMS)
    assert res.fallback is not None and "dropped (reader)" in res.fallback
    assert res.details.initial_fit.boundary is True
    assert res.converged and res.boundary is False
    assert res.details.model == "log(seconds) ~ arm + center + (1|case)"
    block = primary_analysis(_flat_reader_times(2), design="paired_by_case", **ARMS, n_permutations=0,
                             subgroups=False)
    assert any("fallback applied" in w for w in block.warnings)
    # the generic helper: a factor with identical level means sits on the boundary and is dropped
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(10), 20)
    b = np.tile(np.arange(5), 40)
    y = rng.normal(0, 1, 10)[g] + rng.normal(0, 1, 200)
    y = y - pd.Series(y).groupby(b).transform("mean").to_numpy() + y.mean()
    out = fit_with_fallback(y, pd.DataFrame({"(Intercept)": np.ones(200)}), {"g": g, "b": b})
    assert out.terms == ("g",) and out.initial_boundary and "dropped (b)" in out.fallback


def _result(endpoint: str, p: float | None) -> PrimaryResult:
    return PrimaryResult(endpoint=endpoint, estimate=0.0, ci=(0.0, 0.0), p=p, df=1.0, method="", n_cases=1,
                         n_readers={}, variance_components={}, converged=True, boundary=False, fallback=None)


def test_fixed_sequence_hierarchy():
    out = apply_hierarchy([_result("quality", 0.01), _result("reading_time", 0.2), _result("preference", 0.001)])
    assert [r.confirmatory for r in out] == [True, True, False]
    assert [r.hierarchy_position for r in out] == [1, 2, 3]
    assert "NOT confirmatory" in out[2].hierarchy_note and "reading time" in out[2].hierarchy_note
    out = apply_hierarchy([_result("quality", 0.3), _result("reading_time", 0.001), _result("preference", None)])
    assert [r.confirmatory for r in out] == [True, False, False]


def test_primary_block_comes_first_in_results_json_and_cli(tmp_path):
    tables = simulate("paired_by_case", n_cases=30, n_readers=4, n_centers=2, quality_effect=0.3, seed=8)
    manifest = {"trial": "PRI", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
                "data_sha256": "ab" * 32, "code_version": "test", "preference_majority": 3}
    results = analyse_results(tables, manifest)
    report = render_report(results, tables, manifest, tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert next(iter(saved)) == "primary"
    assert saved["primary"]["quality"]["estimate"] == pytest.approx(results.primary.quality.estimate)
    assert saved["quality"]["mixed_model"]["estimate"] == saved["primary"]["quality"]["estimate"]
    assert "does not account for readers" in saved["quality"]["paired_t"]["label"]
    html = report.read_text()
    assert html.index("Primary results (declared analysis)") < html.index("Secondary and descriptive results")
    assert html.index('class="results primary"') < html.index("Paired t-test")
    assert "Satterthwaite" in html and "cxr-trial lmm" in html and "converged" in html
    export = tmp_path / "export"
    export.mkdir()
    for name, t in tables.items():
        t.to_csv(export / f"{name}.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "analysis", "trial", str(export), "--majority", "3",
                           "--permutations", "100"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith('{\n  "primary": {')
    out = json.loads(proc.stdout)
    assert next(iter(out)) == "primary"
    assert set(out["primary"]) >= {"quality", "reading_time", "preference", "hierarchy", "engine", "methods"}
    for key in ("quality", "reading_time", "preference"):
        r = out["primary"][key]
        assert {"estimate", "ci", "p", "method", "df", "n_cases", "n_readers", "variance_components",
                "converged"} <= set(r)


def test_kenward_roger_is_an_option():
    tables = simulate("paired_by_case", n_cases=40, n_readers=8, n_centers=2, quality_effect=0.3, seed=6)
    kw = {"design": "paired_by_case", "majority_k": 3, **ARMS, "subgroups": False}
    kr = primary_analysis(tables, **kw, df_method="kenward-roger")
    sw = primary_analysis(tables, **kw)
    assert "Kenward-Roger" in kr.methods and "Kenward-Roger" in kr.quality.method and "Kenward" not in sw.methods
    # same model, same estimate; the df come from a different approximation (close in a near-balanced design)
    assert kr.quality.estimate == pytest.approx(sw.quality.estimate)
    assert kr.quality.df == pytest.approx(sw.quality.df, rel=0.5) and kr.quality.p is not None
    with pytest.raises(ValueError):
        primary_analysis(tables, **kw, df_method="wald")


def test_subgroups_are_interactions_in_the_primary_model():
    tables = simulate("paired_by_case", n_cases=60, n_readers=12, n_centers=3, quality_effect=0.4, seed=2)
    sub = subgroup_analysis(tables, design="paired_by_case", **ARMS)
    q = sub.center["quality"]
    assert q.model.startswith("y ~ arm * center + (1|reader)") and set(q.effects) == {"S0", "S1", "S2"}
    assert q.interaction_test.ndf == 2 and 0 <= q.interaction_test.p <= 1
    assert q.reference_level == "S0" and set(q.interactions) == {"S1", "S2"}
    # in this simulator the senior readers all work at center S0: the experience interaction is not estimable
    assert "confounded" in sub.reader_experience["reading_time"].note
    sub2 = subgroup_analysis(simulate("paired_by_case", n_cases=60, n_readers=12, n_centers=2, seed=2),
                             design="paired_by_case", **ARMS)
    t = sub2.reader_experience["reading_time"]
    assert set(t.effects) == {"junior", "senior"} and all(e.estimate > 0 for e in t.effects.values())
    assert t.interaction_test.ndf == 1 and "descriptive" in sub.note
    # the results.json form: as the dicts it replaced (the coefficients under interaction_vs_<reference level>)
    d = sub.to_dict()
    assert list(d) == ["note", "center", "reader_experience"]
    qd = d["center"]["quality"]
    assert list(qd) == ["model", "effects", "interaction_vs_S0", "interaction_test", "converged", "boundary",
                        "fallback"]
    assert qd["effects"]["S1"] == {"estimate": q.effects["S1"].estimate, "ci": list(q.effects["S1"].ci),
                                   "n_cases": q.effects["S1"].n_cases}
    assert set(qd["interaction_vs_S0"]["S2"]) == {"estimate", "p", "df"} and set(qd["interaction_test"]) == {
        "f", "ndf", "ddf", "p"}
    assert d["reader_experience"]["reading_time"] == {"note": sub.reader_experience["reading_time"].note}


def test_a_ratio_bound_that_overflows_is_none_not_a_crash():
    # A subgroup with almost no degrees of freedom has log-scale CI bounds near +-1e300: math.exp raised
    # OverflowError and took the whole analysis down (seen once in tests/analysis_app/test_blinding_report.py).
    from analysis.stats.primary import _exp

    assert _exp(1e300) is None and _exp(float("inf")) is None and _exp(float("nan")) is None
    assert _exp(-1e300) == 0.0 and _exp(0.0) == 1.0
