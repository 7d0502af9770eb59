"""analysis/stats/lmm.py against R's lme4 + lmerTest (Satterthwaite; Kenward-Roger through pbkrtest), on simulated
trials of every design.

R is the oracle (tests/analysis/r/lmer_fit.R, run once per module with ``Rscript`` over a job list); `make test`
installs it from Debian. Without Rscript (or its packages) these tests skip locally and FAIL under CI=true. The R
fits use lme4's own optimiser (nloptwrap BOBYQA)
with tolerances tightened to 1e-12: with lme4's defaults BOBYQA stops ~1e-5 (relative) short of the REML optimum
in theta (our REML criterion is then slightly lower than lme4's), which alone moves df and small p-values by up to
~2e-4; at the optimum both engines agree to ~1e-6. One comparison with lme4's default settings is kept, at 1e-3.

tests/analysis/results/lmer_paired_by_case.{csv,json} hold one data set and lme4's answer (with the R, lme4 and
lmerTest versions) so the comparison also runs as a regression check without R.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lmm_trials import Trial, simulate

from analysis.stats import lmm
from analysis.stats.lmm import fit_lmm

HERE = Path(__file__).resolve().parent
R_SCRIPT = HERE / "r" / "lmer_fit.R"
RESULTS = HERE / "results"
RTOL = 1e-4


def _no_r(reason: str) -> None:
    msg = f"{reason} (make test installs r-base-core r-cran-lme4 r-cran-lmertest r-cran-pbkrtest)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


DESIGNS = {
    "paired_by_case": {"n_cases": 60, "n_readers": 8, "n_centers": 2},
    "crossover": {"n_cases": 24, "n_readers": 4, "n_centers": 2},
    "case_randomised": {"n_cases": 40, "n_readers": 6, "n_centers": 2},
}


def _contrast(trial: Trial) -> np.ndarray:
    c = np.zeros(trial.X.shape[1])
    c[1], c[-1] = 1.0, 0.5  # arm + half a center effect: exercises the contrast path
    return c


def _f_rows(trial: Trial) -> np.ndarray:
    rows = np.zeros((2, trial.X.shape[1]))
    rows[0, 1], rows[1, 2] = 1.0, 1.0  # arm and the center effect jointly (2 df)
    return rows


def _only(trial: Trial, *names: str) -> Trial:
    return Trial(y=trial.y, X=trial.X, groups={k: trial.groups[k] for k in names})


# every R fit the module needs: name -> (trial, REML, tight optimiser, contrast + Kenward-Roger)
CASES: dict[str, tuple[Trial, bool, bool, bool]] = {
    **{d: (simulate(d, seed=7, **kw), True, True, True) for d, kw in DESIGNS.items()},
    "ml": (simulate("paired_by_case", seed=11, **DESIGNS["paired_by_case"]), False, True, False),
    # no expert effect at all: lme4 puts the expert SD on (or next to) zero and calls the fit singular
    "boundary": (simulate("paired_by_case", seed=3, sd={"expert": 0.0}, **DESIGNS["paired_by_case"]),
                 True, True, False),
    # one time per read: random case and reader only (report = read = residual); another elimination plan
    "time": (_only(simulate("paired_by_case", seed=5, experts=(1, 1), n_cases=80, n_readers=8, n_centers=2),
                   "case", "reader"), True, True, False),
    "single": (_only(simulate("case_randomised", seed=9, experts=(1, 1), **DESIGNS["case_randomised"]), "case"),
               True, True, False),
    "default_optimiser": (simulate("paired_by_case", seed=7, **DESIGNS["paired_by_case"]), True, False, False),
}


@pytest.fixture(scope="module")
def lmer(tmp_path_factory) -> dict[str, dict]:
    """lme4 + lmerTest (+ pbkrtest) answers for every case in CASES, from one R session."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        _no_r("Rscript not found")
    tmp = tmp_path_factory.mktemp("lmer")
    jobs = []
    for name, (trial, reml, tight, with_contrast) in CASES.items():
        trial.to_csv(tmp / f"{name}.csv")
        job = [str(tmp / f"{name}.csv"), str(tmp / f"{name}.json"), str(int(reml)), str(int(tight))]
        if with_contrast:
            job += [",".join(repr(float(v)) for v in _contrast(trial)), "1",
                    ";".join(",".join(repr(float(v)) for v in row) for row in _f_rows(trial))]
        jobs.append(" ".join(job))
    (tmp / "jobs.txt").write_text("\n".join(jobs) + "\n")
    proc = subprocess.run([rscript, str(R_SCRIPT), str(tmp / "jobs.txt")], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0 and "there is no package called" in proc.stderr:
        _no_r(f"R lacks a package: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    return {name: json.loads((tmp / f"{name}.json").read_text()) for name in CASES}


def assert_kr_matches(fit: lmm.LmmFit, kr: dict, contrast: np.ndarray) -> None:
    """Kenward-Roger: pbkrtest's adjusted SEs and df, via lmerTest's summary(ddf = "Kenward-Roger")."""
    for key in ("coef", "se", "df", "t", "p"):
        np.testing.assert_allclose(getattr(fit, key), kr[key], rtol=RTOL, err_msg=f"KR {key}")
    c = fit.contrast(contrast)
    for key in ("estimate", "se", "df", "p"):
        assert getattr(c, key) == pytest.approx(kr["contrast"][key], rel=RTOL), f"KR contrast {key}"


def assert_matches(fit: lmm.LmmFit, ref: dict, rtol: float = RTOL) -> None:
    assert list(fit.names) == ref["names"]
    for key in ("coef", "se", "df", "t", "p"):
        np.testing.assert_allclose(getattr(fit, key), ref[key], rtol=rtol, err_msg=key)
    total = sum(ref["variance_components"].values())
    for name, value in ref["variance_components"].items():
        # a component at the boundary is ~0 in both: compare it on the scale of the total variance
        assert fit.variance_components[name] == pytest.approx(value, rel=rtol, abs=rtol * 1e-3 * total), name
    assert fit.reml_criterion == pytest.approx(ref["reml_criterion"], rel=rtol * 1e-3)
    assert fit.boundary == bool(ref["singular"])
    assert fit.n_obs == ref["n_obs"]


def _fit(name: str, **kw) -> lmm.LmmFit:
    trial, reml = CASES[name][0], CASES[name][1]
    return fit_lmm(trial.y, trial.X, trial.groups, reml=reml, **kw)


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_quality_model_matches_lmer_in_every_design(design, lmer):
    ref, contrast = lmer[design], _contrast(CASES[design][0])
    fit = _fit(design)
    assert fit.converged, fit.message
    assert_matches(fit, ref)
    c = fit.contrast(contrast)
    for key in ("estimate", "se", "df", "t", "p", "ci_low", "ci_high"):
        assert getattr(c, key) == pytest.approx(ref["contrast"][key], rel=RTOL), key
    kr = _fit(design, df_method="kenward-roger")
    assert_kr_matches(kr, ref["kr"], contrast)
    for f, rf in ((fit.ftest(_f_rows(CASES[design][0])), ref["ftest"]),
                  (kr.ftest(_f_rows(CASES[design][0])), ref["kr"]["ftest"])):
        assert f.ndf == rf["ndf"] == 2
        for key in ("f", "ddf", "p"):
            assert getattr(f, key) == pytest.approx(rf[key], rel=RTOL), f"F test {key}"


def test_ml_fit_matches_lmer(lmer):
    assert_matches(_fit("ml"), lmer["ml"])


def test_boundary_fit_matches_lmer_and_is_flagged(lmer):
    fit = _fit("boundary")
    assert lmer["boundary"]["singular"] and fit.boundary
    assert fit.variance_components["expert"] < 1e-6
    assert_matches(fit, lmer["boundary"])


def test_reading_time_model_without_report_matches_lmer(lmer):
    assert_matches(_fit("time"), lmer["time"])


def test_single_random_intercept_matches_lmer(lmer):
    assert_matches(_fit("single"), lmer["single"])


def test_lme4_default_optimiser_agrees_to_1e3(lmer):
    ref = lmer["default_optimiser"]
    fit = _fit("default_optimiser")
    assert_matches(fit, ref, rtol=1e-3)
    assert fit.reml_criterion <= ref["reml_criterion"] + 1e-9  # never worse than lme4's optimum


def _reference_trial() -> tuple[Trial, dict]:
    data = pd.read_csv(RESULTS / "lmer_paired_by_case.csv")
    fixed = [c for c in data if c.startswith("f_")]
    trial = Trial(y=data["y"].to_numpy(), X=data[fixed].rename(columns=lambda c: c[2:]),
                  groups={c[2:]: data[c].to_numpy() for c in data if c.startswith("g_")})
    return trial, json.loads((RESULTS / "lmer_paired_by_case.json").read_text())


def test_stored_lmer_result_regression():
    """lme4 1.1-31 / lmerTest 3.1-3 on a stored paired-by-case trial (no R needed)."""
    trial, ref = _reference_trial()
    assert ref["versions"]["lme4"] and ref["versions"]["lmerTest"]
    fit = fit_lmm(trial.y, trial.X, trial.groups)
    assert fit.converged
    assert_matches(fit, ref)
    c = fit.contrast(np.asarray(ref["contrast"]["L"]))
    assert c.df == pytest.approx(ref["contrast"]["df"], rel=RTOL)
    assert c.p == pytest.approx(ref["contrast"]["p"], rel=RTOL)
    kr = fit_lmm(trial.y, trial.X, trial.groups, df_method="kenward-roger")
    assert_kr_matches(kr, ref["kr"], np.asarray(ref["contrast"]["L"]))


def test_general_elimination_paths_agree_with_the_fast_one(monkeypatch):
    """The sparse (SuperLU / sparse Schur) and ungrouped paths give the same fit as the structured one."""
    trial = simulate("crossover", seed=2, **DESIGNS["crossover"])
    fast = fit_lmm(trial.y, trial.X, trial.groups)
    monkeypatch.setattr(lmm, "_MAX_SIZE_GROUPS", 0)
    monkeypatch.setattr(lmm, "_DENSE_MAX", 3)
    monkeypatch.setattr(lmm, "_DENSE_TAIL", 2)
    slow = fit_lmm(trial.y, trial.X, trial.groups)
    for key in ("coef", "se"):
        np.testing.assert_allclose(getattr(slow, key), getattr(fast, key), rtol=1e-6, err_msg=key)
    # that path has no analytic gradient: its Hessian comes from second differences of the deviance (df ~5e-6;
    # a p-value of 1e-6 moves ~10x more)
    np.testing.assert_allclose(slow.df, fast.df, rtol=2e-5)
    np.testing.assert_allclose(slow.p, fast.p, rtol=1e-4)
    assert slow.reml_criterion == pytest.approx(fast.reml_criterion, rel=1e-12)


def test_contrast_and_coef_test_agree():
    trial = simulate("case_randomised", seed=4, **DESIGNS["case_randomised"])
    fit = fit_lmm(trial.y, trial.X, trial.groups)
    arm = fit.coef_test("arm", conf_level=0.9)
    i = fit.names.index("arm")
    assert arm.estimate == fit.coef[i] and arm.se == pytest.approx(fit.se[i])
    assert arm.df == pytest.approx(fit.df[i]) and arm.p == pytest.approx(fit.p[i])
    assert arm.ci_low < arm.estimate < arm.ci_high and arm.conf_level == 0.9
    assert fit.ftest(np.eye(len(fit.names))[[i]]).f == pytest.approx(arm.t**2)
    assert fit.ftest(np.eye(len(fit.names))[[i]]).p == pytest.approx(arm.p)
    wide = fit.coef_test("arm")
    assert wide.ci_high - wide.ci_low > arm.ci_high - arm.ci_low
    assert fit.n_levels == {"reader": 6, "case": 40, "report": len(set(trial.groups["report"])), "expert": 5}
    assert list(fit.variance_components) == ["reader", "case", "report", "expert", "residual"]
    assert "lme4" in fit.engine and fit.df_method == "satterthwaite"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda t: (t.y, t.X.assign(dup=t.X["arm"]), t.groups), "rank deficient"),
        (lambda t: (np.where(np.arange(len(t.y)) == 0, np.nan, t.y), t.X, t.groups), "finite"),
        (lambda t: (t.y, t.X, {**t.groups, "one": np.zeros(len(t.y))}), "levels"),
        (lambda t: (t.y, t.X, {"obs": np.arange(len(t.y))}), "levels"),
    ],
)
def test_bad_input_is_refused(change, match):
    trial = simulate("paired_by_case", seed=1, n_cases=20, n_readers=4, n_centers=1)
    with pytest.raises(ValueError, match=match):
        fit_lmm(*change(trial))


def test_kenward_roger_options_are_checked(monkeypatch):
    trial = simulate("paired_by_case", seed=1, n_cases=20, n_readers=4, n_centers=1)
    with pytest.raises(ValueError, match="REML"):
        fit_lmm(trial.y, trial.X, trial.groups, reml=False, df_method="kenward-roger")
    with pytest.raises(ValueError, match="df_method"):
        fit_lmm(trial.y, trial.X, trial.groups, df_method="residual")
    monkeypatch.setattr(lmm, "_KR_MAX_LEVELS", 10)
    with pytest.raises(ValueError, match="satterthwaite"):
        fit_lmm(trial.y, trial.X, trial.groups, df_method="kenward-roger")


def test_leading_block_inverses_from_one_inversion():
    """The gradient's three inverses (random effects; + fixed effects; + response) come from one inversion of the
    largest block by the partitioned-inverse identity (the crossover models have ~1000-column tails)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 60))
    a = x @ x.T + 5 * np.eye(60)
    for t, inv in zip((54, 59, 60), lmm._leading_inverses(a, (54, 59, 60)), strict=True):
        np.testing.assert_allclose(inv, np.linalg.inv(a[:t, :t]), rtol=1e-9, atol=1e-12)
