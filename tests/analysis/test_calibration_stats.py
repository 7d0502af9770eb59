"""Calibration (analysis/stats/calibration.py): Platt scaling against R's glm, isotonic regression against R's
isoreg, both on pROC's aSAH data (tests/analysis/results/proc/); reliability bins, ECE, MCE and the Brier score and
its decomposition against values computed by hand."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.stats.calibration import (
    calibration_report,
    cross_fitted,
    fit_calibrator,
    fit_isotonic,
    fit_platt,
    pava,
    reliability,
)

ASAH = Path(__file__).resolve().parent / "results" / "proc" / "aSAH.csv"
R_CODE = r"""
library(jsonlite)
d <- read.csv(commandArgs(TRUE)[1])
g <- glm(y ~ qlogis(p), family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
o <- order(d$p)
iso <- isoreg(d$p[o], d$y[o])
write_json(list(coef = unname(coef(g)), fitted = unname(fitted(g)), iso_x = d$p[o], iso_yf = iso$yf,
                brier = mean((d$p - d$y)^2)), commandArgs(TRUE)[2], digits = NA, auto_unbox = TRUE)
"""


def _asah() -> pd.DataFrame:
    d = pd.read_csv(ASAH)
    # s100b as a probability, made distinct (R's isoreg does not pool ties): (s100b + 1e-4 * row) / 2.2
    return pd.DataFrame({"p": (d["s100b"] + 1e-4 * np.arange(len(d))) / 2.2,
                         "y": (d["outcome"] == "Poor").astype(int)})


@pytest.fixture(scope="module")
def r_answers(tmp_path_factory) -> dict:
    rscript = shutil.which("Rscript")
    if rscript is None:
        if os.environ.get("CI"):
            pytest.fail("Rscript not found (CI=true: the R reference must run)")
        pytest.skip("Rscript not found")
    tmp = tmp_path_factory.mktemp("calib")
    _asah().to_csv(tmp / "d.csv", index=False)
    (tmp / "fit.R").write_text(R_CODE)
    proc = subprocess.run([rscript, str(tmp / "fit.R"), str(tmp / "d.csv"), str(tmp / "out.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp / "out.json").read_text())


def test_platt_without_smoothed_targets_is_rs_glm(r_answers):
    d = _asah()
    cal = fit_platt(d["p"], d["y"], platt_targets=False)
    assert cal.converged and cal.n == 113
    np.testing.assert_allclose([cal.b, cal.a], r_answers["coef"], rtol=1e-8)  # R: (intercept, slope)
    np.testing.assert_allclose(cal.apply(d["p"]), r_answers["fitted"], rtol=1e-8)


def test_isotonic_is_rs_isoreg(r_answers):
    d = _asah()
    cal = fit_isotonic(d["p"], d["y"])
    np.testing.assert_allclose(cal.x, r_answers["iso_x"], rtol=1e-12)
    np.testing.assert_allclose(cal.fitted, r_answers["iso_yf"], rtol=1e-10)
    np.testing.assert_allclose(cal.apply(r_answers["iso_x"]), r_answers["iso_yf"], rtol=1e-10)


def test_brier_matches_r(r_answers):
    d = _asah()
    assert reliability(d["p"], d["y"]).brier == pytest.approx(r_answers["brier"], rel=1e-12)


def test_platt_targets_by_hand():
    # Separable data: with 0/1 targets the slope diverges; Platt's targets (N+ = 2: 3/4, N- = 2: 1/4) keep it
    # finite. At the fitted optimum the mean prediction equals the mean target (the intercept's score equation).
    p, y = [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]
    cal = fit_platt(p, y)
    assert cal.converged and np.isfinite(cal.a)
    assert cal.apply(p).mean() == pytest.approx(0.5, abs=1e-9)
    # symmetric data: b = 0, and expit(a * logit(0.9)) ... solves the slope's score equation sum (t - mu) x = 0
    assert cal.b == pytest.approx(0.0, abs=1e-9)
    mu = cal.apply(p)
    t = np.array([0.25, 0.25, 0.75, 0.75])
    x = np.log(np.array(p) / (1 - np.array(p)))
    assert float(np.sum((t - mu) * x)) == pytest.approx(0.0, abs=1e-9)


def test_pava_by_hand():
    assert pava([0, 1, 0, 1]).tolist() == [0, 0.5, 0.5, 1]
    assert pava([3, 1, 2]).tolist() == [2, 2, 2]
    assert pava([1, 3, 2], [1, 1, 3]).tolist() == pytest.approx([1, 2.25, 2.25])  # (3 + 6) / 4
    iso = fit_isotonic([0.1, 0.35, 0.4, 0.8, 0.8], [0, 1, 0, 1, 0])
    assert iso.x == (0.1, 0.35, 0.4, 0.8) and iso.fitted == pytest.approx((0, 0.5, 0.5, 0.5))
    assert iso.apply([0.0, 0.2, 1.0]).tolist() == pytest.approx([0.0, 0.2, 0.5])  # interpolated, held beyond


def test_reliability_ece_and_brier_by_hand():
    p, y = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    s = reliability(p, y, n_bins=2)
    # Brier: (0.01 + 0.16 + 0.4225 + 0.04) / 4
    assert s.brier == pytest.approx(0.158125)
    # bin [0, 0.5): p 0.1, 0.4, 0.35 (mean 0.283333), observed 1/3; bin [0.5, 1]: p 0.8, observed 1
    b0, b1 = s.bins
    assert (b0.count, b1.count) == (3, 1)
    assert b0.mean_predicted == pytest.approx(0.85 / 3) and b0.observed_rate == pytest.approx(1 / 3)
    # ECE = 3/4 * |1/3 - 0.85/3| + 1/4 * |1 - 0.8| = 0.0375 + 0.05; MCE = 0.2
    assert s.ece == pytest.approx(0.0875) and s.mce == pytest.approx(0.2)
    # Murphy: reliability 3/4 (0.05)^2 + 1/4 (0.2)^2 = 0.011875; resolution 3/4 (1/3 - 1/2)^2 + 1/4 (1/2)^2
    assert s.reliability == pytest.approx(0.011875)
    assert s.resolution == pytest.approx(0.75 / 36 + 0.0625)
    assert s.uncertainty == pytest.approx(0.25)


def test_murphy_decomposition_is_exact_with_one_value_per_bin():
    p = np.repeat([0.05, 0.25, 0.55, 0.95], 25)
    y = (np.arange(100) % 25 < np.repeat([2, 5, 15, 24], 25)).astype(int)
    s = reliability(p, y, n_bins=10)
    assert s.brier == pytest.approx(s.reliability - s.resolution + s.uncertainty, abs=1e-12)
    assert [b.count for b in s.bins if b.count] == [25, 25, 25, 25] and s.bins[1].count == 0


def test_calibration_on_a_reference_set_lowers_ece_of_overconfident_probabilities():
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.05, 0.95, 4000)
    y = (rng.uniform(size=truth.size) < truth).astype(int)
    over = 1 / (1 + np.exp(-3 * np.log(truth / (1 - truth))))  # an overconfident model
    ref, new = slice(0, 2000), slice(2000, None)
    before = reliability(over[new], y[new]).ece
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(over[ref], y[ref], method)
        after = reliability(cal.apply(over[new]), y[new]).ece
        assert after < before / 3, (method, before, after)
    platt = fit_calibrator(over[ref], y[ref], "platt")
    assert platt.a == pytest.approx(1 / 3, abs=0.05)  # undoes the factor 3 on the logit scale


def test_bad_input():
    with pytest.raises(ValueError):
        reliability([0.2, 1.2], [0, 1])
    with pytest.raises(ValueError):
        reliability([0.2, 0.3], [0, 2])
    with pytest.raises(ValueError):
        fit_calibrator([0.2, 0.3], [0, 1], "beta")
    assert reliability([0.2, 0.7, 0.4], [0, 1, 0], n_bins=3, strategy="quantile").strategy == "quantile"


def test_cross_fitted_calibration_uses_only_the_other_folds():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    y = np.array([0, 0, 1, 0, 1, 0, 1, 1, 1, 1])
    out = cross_fitted(p, y, "isotonic", folds=2)
    odd = fit_isotonic(p[1::2], y[1::2])  # cases 0, 2, 4, ... are calibrated by the odd ones
    np.testing.assert_allclose(out[0::2], odd.apply(p[0::2]))


def test_the_report_has_raw_and_calibrated_reliability():
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.05, 0.95, 400)
    y = (rng.uniform(size=400) < truth).astype(int)
    over = 1 / (1 + np.exp(-3 * np.log(truth / (1 - truth))))
    rep = calibration_report(over, y)
    assert len(rep.raw.bins) == 10 and rep.raw.n == 400
    assert rep.platt.ece < rep.raw.ece and rep.isotonic.ece < rep.raw.ece
    assert rep.platt.calibrator.method == "platt" and rep.platt.folds == 5
    assert rep.to_dict()["platt"]["calibrator"]["method"] == "platt" and rep.to_dict()["platt"]["folds"] == 5
    few = calibration_report([0.1, 0.9, 0.8], [0, 1, 1])
    assert few.note and few.raw is None and few.to_dict() == {"note": few.note, "n": 3}
