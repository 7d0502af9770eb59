"""ROC AUC with DeLong variance, the paired DeLong test, and sensitivity/specificity at a threshold.

DeLong (1988) is written by hand (scipy/statsmodels have no DeLong), using the midrank placement values of
Sun and Xu (2014). Results match pROC, including its 'auto' orientation rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ._result import UNSET, StatResult, as_float_array, empty_result
from .proportions import clopper_pearson

Direction = Literal["<", ">", "auto"]



@dataclass
class AUCResult(StatResult):
    """Empirical AUC with DeLong ``variance`` and ``se``; ``direction`` the score orientation used; ``test`` what
    ``statistic``/``p`` test; ``n_positive``/``n_negative`` the cases and controls."""

    variance: float = UNSET
    se: float = UNSET
    direction: str = UNSET
    test: str = UNSET
    n_positive: int = UNSET
    n_negative: int = UNSET


@dataclass
class PairedAUCResult(StatResult):
    """Paired DeLong test of AUC1 - AUC2: both AUCs, their variances and covariance, the orientations used."""

    auc1: float = UNSET
    auc2: float = UNSET
    var1: float = UNSET
    var2: float = UNSET
    covariance: float = UNSET
    directions: list[str] = UNSET
    n_positive: int = UNSET
    n_negative: int = UNSET


@dataclass
class OperatingPointResult(StatResult):
    """Sensitivity (the ``estimate``) and specificity of ``score >= threshold`` with Clopper-Pearson CIs, PPV, NPV
    and the 2x2 counts."""

    threshold: float = UNSET
    tp: int = UNSET
    fn: int = UNSET
    tn: int = UNSET
    fp: int = UNSET
    sensitivity: float | None = UNSET
    sensitivity_ci: tuple[float | None, float | None] = UNSET
    specificity: float | None = UNSET
    specificity_ci: tuple[float | None, float | None] = UNSET
    ppv: float | None = UNSET
    npv: float | None = UNSET


def _truth_mask(truth: Any, positive: Any) -> tuple[np.ndarray, np.ndarray]:
    """(is_positive, is_known) masks; missing truth values are unknown."""
    t = pd.Series(np.asarray(truth, dtype=object).ravel())
    known = t.notna().to_numpy() & (t.astype(str).str.strip() != "").to_numpy()
    if positive is None:
        pos = pd.to_numeric(t, errors="coerce").fillna(0).to_numpy() > 0
    else:
        pos = (t == positive).to_numpy()
        if not pos.any():  # tolerate "1" vs 1 (CSV round trips)
            pos = (t.astype(str) == str(positive)).to_numpy()
    return pos & known, known


def resolve_direction(cases: np.ndarray, controls: np.ndarray, direction: Direction) -> str:
    """pROC's rule for direction='auto': '>' when median(controls) > median(cases), else '<'."""
    if direction != "auto":
        return direction
    return ">" if np.median(controls) > np.median(cases) else "<"


def _placements(cases: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong structural components V10 (per case) and V01 (per control) for direction '<' (higher = positive)."""
    m, n = cases.size, controls.size
    combined = stats.rankdata(np.concatenate([cases, controls]))
    r_cases = stats.rankdata(cases)
    r_controls = stats.rankdata(controls)
    v10 = (combined[:m] - r_cases) / n
    v01 = 1.0 - (combined[m:] - r_controls) / m
    return v10, v01


def _split(truth: Any, scores: list[Any], positive: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pos, known = _truth_mask(truth, positive)
    arrs = [as_float_array(s) for s in scores]
    ok = known.copy()
    for a in arrs:
        if a.size != ok.size:
            raise ValueError("truth and scores differ in length")
        ok &= np.isfinite(a)
    return [a[ok & pos] for a in arrs], [a[ok & ~pos] for a in arrs]


def auc_delong(
    truth: Any, score: Any, positive: Any = 1, direction: Direction = "<", conf_level: float = 0.95
) -> AUCResult:
    """Empirical AUC with DeLong variance and Wald CI (clipped to [0, 1], as pROC).

    ``direction='<'``: higher scores mean positive (the trial's fixed orientation); ``'>'``: lower scores mean
    positive; ``'auto'``: pROC's median rule. ``positive`` is the truth value of diseased cases (None: truth > 0).
    """
    method = "Empirical AUC, DeLong variance"
    (cases,), (controls,) = _split(truth, [score], positive)
    counts = {"n_positive": cases.size, "n_negative": controls.size}
    if cases.size < 2 or controls.size < 2:
        return empty_result(method, "fewer than 2 positives or negatives", AUCResult, n=cases.size + controls.size,
                            **counts)
    d = resolve_direction(cases, controls, direction)
    sign = 1.0 if d == "<" else -1.0
    v10, v01 = _placements(sign * cases, sign * controls)
    auc = float(v10.mean())
    var = float(v10.var(ddof=1) / cases.size + v01.var(ddof=1) / controls.size)
    se = np.sqrt(var)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    ci = (max(0.0, auc - z * se), min(1.0, auc + z * se))
    zstat = (auc - 0.5) / se if se > 0 else float("nan")
    p = 2 * stats.norm.sf(abs(zstat)) if se > 0 else float("nan")
    return AUCResult(method=method, estimate=auc, ci=ci, statistic=zstat, p=p, n=cases.size + controls.size,
                     conf_level=conf_level, variance=var, se=se, direction=d, test="Wald z vs AUC 0.5", **counts)


def delong_paired_test(
    truth: Any,
    score1: Any,
    score2: Any,
    positive: Any = 1,
    direction: Direction = "<",
    conf_level: float = 0.95,
) -> PairedAUCResult:
    """DeLong test of AUC1 - AUC2 for two scores on the same cases (pROC roc.test(method='delong', paired=TRUE)).

    Each score's orientation is resolved separately (as pROC builds each curve on its own); rows with a missing
    score in either are dropped. Estimate is AUC1 - AUC2 with a Wald CI; statistic is Z.
    """
    method = "Paired DeLong test of two correlated AUCs"
    (c1, c2), (n1, n2) = _split(truth, [score1, score2], positive)
    counts = {"n_positive": c1.size, "n_negative": n1.size}
    if c1.size < 2 or n1.size < 2:
        return empty_result(method, "fewer than 2 positives or negatives", PairedAUCResult, n=c1.size + n1.size,
                            **counts)
    comps = []
    dirs = []
    for cases, controls in ((c1, n1), (c2, n2)):
        d = resolve_direction(cases, controls, direction)
        s = 1.0 if d == "<" else -1.0
        comps.append(_placements(s * cases, s * controls))
        dirs.append(d)
    v10 = np.vstack([c[0] for c in comps])
    v01 = np.vstack([c[1] for c in comps])
    aucs = v10.mean(axis=1)
    cov = np.cov(v10, ddof=1) / c1.size + np.cov(v01, ddof=1) / n1.size
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = np.sqrt(var) if var > 0 else float("nan")
    zstat = diff / se
    p = 2 * stats.norm.sf(abs(zstat))
    zq = stats.norm.ppf(0.5 + conf_level / 2)
    return PairedAUCResult(
        method=method, estimate=diff, ci=(diff - zq * se, diff + zq * se), statistic=zstat, p=p,
        n=c1.size + n1.size, conf_level=conf_level,
        auc1=aucs[0], auc2=aucs[1], var1=cov[0, 0], var2=cov[1, 1], covariance=cov[0, 1], directions=dirs, **counts,
    )


def sensitivity_specificity(
    truth: Any,
    score: Any,
    threshold: float = 0.5,
    positive: Any = 1,
    conf_level: float = 0.95,
) -> OperatingPointResult:
    """Sensitivity and specificity of ``score >= threshold`` with Clopper-Pearson CIs.

    ``estimate``/``ci`` are the sensitivity; the :class:`OperatingPointResult` has specificity, its CI, PPV, NPV
    and the 2x2 counts.
    Pass 0/1 calls as ``score`` with threshold 0.5 to assess a binary reader call.
    """
    method = "Sensitivity and specificity at a threshold (Clopper-Pearson CIs)"
    (cases,), (controls,) = _split(truth, [score], positive)
    tp = int((cases >= threshold).sum())
    fn = int(cases.size - tp)
    tn = int((controls < threshold).sum())
    fp = int(controls.size - tn)
    sens = tp / cases.size if cases.size else None
    spec = tn / controls.size if controls.size else None
    details = {
        "threshold": threshold, "tp": tp, "fn": fn, "tn": tn, "fp": fp,
        "sensitivity": sens, "sensitivity_ci": clopper_pearson(tp, cases.size, conf_level),
        "specificity": spec, "specificity_ci": clopper_pearson(tn, controls.size, conf_level),
        "ppv": tp / (tp + fp) if tp + fp else None, "npv": tn / (tn + fn) if tn + fn else None,
    }
    return OperatingPointResult(method=method, estimate=sens, ci=details["sensitivity_ci"],
                                n=cases.size + controls.size, conf_level=conf_level, **details)
