"""Linear mixed models (statsmodels MixedLM): a generic helper, the quality model and the log reading-time model.

Crossed random effects (reader, expert, center) are fitted the statsmodels way: one all-encompassing group and one
variance component per factor (``vc_formula``), which is equivalent to lme4's ``(1|reader) + (1|expert) + ...``.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from ._result import UNSET, StatResult, empty_result
from .arms import resolve_arms


@dataclass
class MixedModelResult(StatResult):
    """A statsmodels MixedLM fit: the model (``formula``, ``groups``, ``re_formula``, ``vc``), ``fixed_effects``
    (estimate, se, z, p, CI per term), ``random_effects`` (SDs, correlations, variance components),
    ``residual_sd``, ``loglik`` and the REML criterion (REML) or deviance/AIC/BIC (ML), ``converged``, ``n_obs``,
    the fit's ``warnings``; with a headline ``term`` its ``se``. The arm models add ``random_factors`` used and the
    arms; the reading-time model the ``log_ratio`` (with CI) and ``percent_change``."""

    formula: str = UNSET
    groups: str | None = UNSET
    re_formula: str | None = UNSET
    vc: dict[str, str] | None = UNSET
    fixed_effects: dict[str, dict[str, float]] = UNSET
    random_effects: dict[str, Any] = UNSET
    residual_sd: float = UNSET
    reml: bool = UNSET
    loglik: float = UNSET
    reml_criterion: float = UNSET
    deviance: float = UNSET
    aic: float | None = UNSET
    bic: float | None = UNSET
    converged: bool = UNSET
    n_obs: int = UNSET
    warnings: list[str] = UNSET
    term: str = UNSET
    se: float = UNSET
    random_factors: list[str] = UNSET
    assisted_arm: Any = UNSET
    control_arm: Any = UNSET
    log_ratio: float = UNSET
    log_ratio_ci: list[float | None] = UNSET
    percent_change: float = UNSET


def _summarise_fit(res: Any, reml: bool, n: int) -> dict[str, Any]:
    fe = pd.DataFrame({"estimate": res.fe_params, "se": res.bse_fe})
    fe["z"] = fe["estimate"] / fe["se"]
    fe["p"] = 2 * stats.norm.sf(np.abs(fe["z"]))
    z = stats.norm.ppf(0.975)
    fe["ci_low"] = fe["estimate"] - z * fe["se"]
    fe["ci_high"] = fe["estimate"] + z * fe["se"]
    random: dict[str, Any] = {}
    cov_re = res.cov_re
    if cov_re is not None and cov_re.shape[0] > 0:
        sds = np.sqrt(np.clip(np.diag(cov_re), 0, None))
        names = [str(c) for c in cov_re.columns]
        random["sd"] = dict(zip(names, sds.tolist(), strict=True))
        corr = {}
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                denom = sds[i] * sds[j]
                corr[f"{names[i]}:{names[j]}"] = float(cov_re.iloc[i, j] / denom) if denom > 0 else None
        if corr:
            random["corr"] = corr
    if getattr(res.model, "k_vc", 0):
        vc_names = list(res.model.exog_vc.names)
        random["vc_variance"] = dict(zip(vc_names, np.asarray(res.vcomp).tolist(), strict=True))
        random["vc_sd"] = {k: float(np.sqrt(max(v, 0.0))) for k, v in random["vc_variance"].items()}
    out = {
        "fixed_effects": {str(k): {c: float(v) for c, v in row.items()} for k, row in fe.iterrows()},
        "random_effects": random,
        "residual_sd": float(np.sqrt(res.scale)),
        "reml": reml,
        "loglik": float(res.llf),
        ("reml_criterion" if reml else "deviance"): float(-2 * res.llf),
        "aic": float(res.aic) if not reml else None,
        "bic": float(res.bic) if not reml else None,
        "converged": bool(res.converged),
        "n_obs": n,
    }
    return out


def fit_mixed_model(
    df: pd.DataFrame,
    formula: str,
    groups: str | None = None,
    re_formula: str | None = None,
    vc: dict[str, str] | None = None,
    reml: bool = True,
    term: str | None = None,
    conf_level: float = 0.95,
    fit_methods: Sequence[str] = ("bfgs", "lbfgs", "cg"),
) -> MixedModelResult:
    """Fit a linear mixed model with statsmodels MixedLM and summarise it.

    ``groups`` names the grouping column (None: a single group, for crossed effects given as ``vc``, a dict
    name -> formula such as ``{"reader": "0 + C(reader)"}``). ``re_formula`` gives random slopes within groups
    (e.g. ``"~Days"`` for lme4's ``(Days | Subject)``). ``term``, if given, is the fixed effect reported as the
    headline estimate with a Wald z test and CI. The :class:`MixedModelResult` holds fixed effects, random-effect
    SDs/correlations, variance components, residual SD, REML criterion (REML) or deviance/AIC/BIC (ML), convergence
    and warnings.
    """
    method = f"Linear mixed model (statsmodels MixedLM, {'REML' if reml else 'ML'})"
    data = df.copy()
    if groups is None:
        data["_all"] = 1
        groups_col = "_all"
        if re_formula is None:
            re_formula = "0"
    else:
        groups_col = groups
    if len(data) == 0:
        return empty_result(method, "no observations", MixedModelResult, formula=formula)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model = smf.mixedlm(formula, data, groups=data[groups_col], re_formula=re_formula, vc_formula=vc)
        try:
            res = model.fit(reml=reml, method=list(fit_methods))
        except np.linalg.LinAlgError as exc:  # e.g. arm confounded with the random factors in a tiny trial
            return empty_result(method, f"the mixed model could not be fitted ({exc})", MixedModelResult,
                                formula=formula, n=int(model.nobs))
        caught = sorted({str(x.message).splitlines()[0] for x in w})
    summary = _summarise_fit(res, reml, int(model.nobs))
    summary.update(formula=formula, groups=groups, re_formula=re_formula, vc=vc, warnings=caught)
    est = ci = stat = p = None
    if term is not None:
        fe = summary["fixed_effects"][term]
        zq = stats.norm.ppf(0.5 + conf_level / 2)
        est, stat, p = fe["estimate"], fe["z"], fe["p"]
        ci = (est - zq * fe["se"], est + zq * fe["se"])
        summary["term"] = term
        summary["se"] = fe["se"]
    return MixedModelResult(method=method, estimate=est, ci=ci, statistic=stat, p=p, n=int(model.nobs),
                            conf_level=conf_level, raw=res, **summary)


def _arm_frame(df: pd.DataFrame, arm_col: str, assisted_arm: Any, control_arm: Any | None) -> tuple[pd.DataFrame,
                                                                                                     Any, str | None]:
    choice = resolve_arms([a for a in pd.unique(df[arm_col].dropna())], assisted_arm, control_arm, lenient=False)
    if choice.problem:
        return df.iloc[0:0], choice.control, choice.problem
    control_arm = choice.control
    out = df[df[arm_col].isin([assisted_arm, control_arm])].copy()
    out["assisted"] = (out[arm_col] == assisted_arm).astype(float)
    return out, control_arm, None


def _arm_mixed_model(
    df: pd.DataFrame,
    outcome: str,
    arm_col: str,
    assisted_arm: Any,
    control_arm: Any | None,
    random_effects: Sequence[str],
    reml: bool,
    conf_level: float,
    method: str,
) -> MixedModelResult:
    if df is None or len(df) == 0 or outcome not in df or arm_col not in df:
        return empty_result(method, "no observations", MixedModelResult)
    data, control_arm, problem = _arm_frame(df, arm_col, assisted_arm, control_arm)
    if problem:
        return empty_result(method, problem, MixedModelResult, n=0)
    data = data[np.isfinite(pd.to_numeric(data[outcome], errors="coerce"))]
    data[outcome] = pd.to_numeric(data[outcome])
    if len(data) < 3 or data["assisted"].nunique() < 2:
        return empty_result(method, "need observations in both arms", MixedModelResult, n=len(data))
    used = [c for c in random_effects if c in data and data[c].nunique(dropna=True) > 1]
    for c in used:
        data[c] = data[c].astype(str)
        data = data[data[c].notna()]
    formula = f"Q('{outcome}') ~ assisted"
    if not used:  # nothing to model as random: ordinary least squares
        ols = smf.ols(formula, data).fit()
        zq = stats.t.ppf(0.5 + conf_level / 2, ols.df_resid)
        est, se = float(ols.params["assisted"]), float(ols.bse["assisted"])
        return MixedModelResult(method=method + " [OLS: no random-effect factor with > 1 level]", estimate=est,
                                ci=(est - zq * se, est + zq * se), statistic=ols.tvalues["assisted"],
                                df=ols.df_resid, p=ols.pvalues["assisted"], n=len(data), conf_level=conf_level,
                                se=se, random_factors=[], assisted_arm=assisted_arm, control_arm=control_arm,
                                raw=ols)
    vc = {c: f"0 + C({c})" for c in used}
    res = fit_mixed_model(data, formula, groups=None, vc=vc, reml=reml, term="assisted", conf_level=conf_level)
    return replace(res, method=method, random_factors=used, assisted_arm=assisted_arm, control_arm=control_arm)


def quality_mixed_model(
    df: pd.DataFrame,
    score: str = "score",
    arm: str = "arm",
    assisted_arm: Any = "ai_assisted",
    control_arm: Any | None = None,
    random_effects: Sequence[str] = ("reader", "expert", "center"),
    reml: bool = True,
    conf_level: float = 0.95,
) -> MixedModelResult:
    """Quality score ~ assisted, with random intercepts for each of ``random_effects`` present (> 1 level).

    ``df`` is long: one row per (expert, report) score with columns ``score``, ``arm`` and any of reader, expert,
    center (add ``"case_code"`` to ``random_effects`` for a case intercept). Estimate: adjusted mean difference
    assisted - control with a Wald CI. Falls back to OLS when no random factor has two levels.
    """
    return _arm_mixed_model(df, score, arm, assisted_arm, control_arm, random_effects, reml, conf_level,
                            "Quality mixed model: score ~ arm + random intercepts (statsmodels MixedLM)")


def log_time_mixed_model(
    df: pd.DataFrame,
    seconds: str = "active_seconds",
    arm: str = "arm",
    assisted_arm: Any = "ai_assisted",
    control_arm: Any | None = None,
    random_effects: Sequence[str] = ("reader", "center"),
    reml: bool = True,
    conf_level: float = 0.95,
) -> MixedModelResult:
    """log(seconds) ~ assisted with reader and center random intercepts; estimate is the ratio of geometric means
    assisted / control, exp(beta), with exp-transformed Wald CI. Non-positive times are dropped.
    """
    method = "Reading-time mixed model: log(seconds) ~ arm + random intercepts; ratio of geometric means"
    if df is None or len(df) == 0 or seconds not in df:
        return empty_result(method, "no observations", MixedModelResult)
    data = df.copy()
    t = pd.to_numeric(data[seconds], errors="coerce")
    data = data[t > 0]
    data["_log_seconds"] = np.log(t[t > 0])
    res = _arm_mixed_model(data, "_log_seconds", arm, assisted_arm, control_arm, random_effects, reml, conf_level,
                           method)
    if res.estimate is None:
        return res
    beta = res.estimate
    lo, hi = res.ci if res.ci is not None else (None, None)
    # A singular fit can leave the Wald CI undefined (None): the ratio is reported without a CI, not a crash.
    ci = (np.exp(lo), np.exp(hi)) if lo is not None and hi is not None else (None, None)
    return replace(res, estimate=np.exp(beta), ci=ci, conf_level=conf_level, log_ratio=beta, log_ratio_ci=[lo, hi],
                   percent_change=100 * (np.exp(beta) - 1))
