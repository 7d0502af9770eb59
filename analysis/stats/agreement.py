"""Agreement between raters: Cohen's kappa (irr::kappa2-compatible), Fleiss' kappa, Shrout-Fleiss ICCs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from ._result import UNSET, StatResult, empty_result

Weights = Literal["unweighted", "linear", "quadratic"]



@dataclass
class KappaResult(StatResult):
    """Cohen's kappa: the ``weights``, the ``categories`` in scale order, ``se_h0`` (for z and p) and ``se`` (for
    the CI), the ``observed_agreement``."""

    weights: str = UNSET
    categories: list[str] = UNSET
    se_h0: float = UNSET
    se: float = UNSET
    observed_agreement: float = UNSET


@dataclass
class FleissKappaResult(StatResult):
    """Fleiss' kappa: raters per subject, ``se_h0`` under kappa = 0, the number of categories."""

    n_raters: int = UNSET
    se_h0: float = UNSET
    n_categories: int = UNSET


@dataclass
class ICCResult(StatResult):
    """Shrout-Fleiss ICC: the ``form``, judges, the F test's ``df1``/``df2`` and the ANOVA mean squares (between
    targets ``bms``, within ``wms``, judges ``jms``, error ``ems``)."""

    form: str = UNSET
    n_judges: int = UNSET
    df1: float = UNSET
    df2: float = UNSET
    bms: float = UNSET
    wms: float = UNSET
    jms: float = UNSET
    ems: float = UNSET


def cohen_kappa(
    rater1: Any,
    rater2: Any,
    weights: Weights = "unweighted",
    categories: list[Any] | None = None,
    conf_level: float = 0.95,
) -> KappaResult:
    """Cohen's kappa for two raters, unweighted or with linear/quadratic weights (statsmodels cohens_kappa).

    Weights use category positions in ``categories`` (default: sorted union of the observed values, as R's
    irr::kappa2, so z and p match it; pass the full scale, e.g. [1, 2, 3, 4, 5], to keep unused categories).
    z and p use the variance under H0: kappa = 0; the CI uses the large-sample variance.
    """
    method = f"Cohen's kappa ({weights})"
    a = pd.Series(np.asarray(rater1, dtype=object).ravel())
    b = pd.Series(np.asarray(rater2, dtype=object).ravel())
    keep = a.notna() & b.notna()
    a, b = a[keep], b[keep]
    if len(a) < 2:
        return empty_result(method, "fewer than 2 jointly rated items", KappaResult, n=len(a))
    cats = list(categories) if categories is not None else sorted(set(a) | set(b))
    table = pd.crosstab(pd.Categorical(a, cats), pd.Categorical(b, cats), dropna=False).to_numpy()
    if np.diag(table).sum() == table.sum() and (table.sum(axis=0) > 0).sum() <= 1:
        return empty_result(method, "a single category used: kappa undefined", KappaResult, n=len(a))
    wt = {"unweighted": None, "linear": "linear", "quadratic": "quadratic"}[weights]
    res = sm_cohens_kappa(table, wt=wt)
    zq = stats.norm.ppf(0.5 + conf_level / 2)
    ci = (res.kappa - zq * res.std_kappa, res.kappa + zq * res.std_kappa)
    return KappaResult(method=method, estimate=res.kappa, ci=ci, statistic=res.z_value,
                       p=res.pvalue_two_sided, n=len(a), conf_level=conf_level,
                       weights=weights, categories=[str(c) for c in cats], se_h0=res.std_kappa0, se=res.std_kappa,
                       observed_agreement=float(np.trace(table) / table.sum()))


def fleiss_kappa(ratings: Any, conf_level: float = 0.95) -> FleissKappaResult:
    """Fleiss' kappa for several raters (rows = subjects, columns = raters; statsmodels fleiss_kappa).

    z and p use the variance under H0 of Fleiss, Nee and Landis (1979), as irr::kappam.fleiss (hand-written:
    statsmodels returns kappa only). Subjects with a missing rating are dropped.
    """
    method = "Fleiss' kappa"
    df = pd.DataFrame(ratings).dropna()
    if len(df) < 2 or df.shape[1] < 2:
        return empty_result(method, "need >= 2 subjects and >= 2 raters", FleissKappaResult, n=len(df))
    codes = pd.DataFrame({c: pd.Categorical(df[c], sorted(set(df.to_numpy().ravel().tolist()), key=str)).codes
                          for c in df.columns})
    table, _ = aggregate_raters(codes.to_numpy())
    kappa = sm_fleiss(table, method="fleiss")
    ns, nr = len(df), df.shape[1]
    pj = table.sum(axis=0) / (ns * nr)
    q = (pj * (1 - pj)).sum()
    var0 = 2 / (q**2 * ns * nr * (nr - 1)) * (q**2 - (pj * (1 - pj) * (1 - 2 * pj)).sum()) if q > 0 else np.nan
    se0 = float(np.sqrt(var0))
    z = kappa / se0
    return FleissKappaResult(method=method, estimate=kappa, statistic=z, p=2 * stats.norm.sf(abs(z)), n=ns,
                             conf_level=conf_level, n_raters=nr, se_h0=se0, n_categories=table.shape[1])


ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")


def _icc_mean_squares(x: np.ndarray) -> dict[str, float]:
    n, k = x.shape
    g = x.mean()
    ss_total = ((x - g) ** 2).sum()
    ss_b = k * ((x.mean(axis=1) - g) ** 2).sum()
    ss_j = n * ((x.mean(axis=0) - g) ** 2).sum()
    ss_w = ss_total - ss_b
    ss_e = ss_w - ss_j
    return {"bms": ss_b / (n - 1), "wms": ss_w / (n * (k - 1)), "jms": ss_j / (k - 1),
            "ems": ss_e / ((n - 1) * (k - 1))}


def icc(ratings: Any, form: str = "ICC(2,1)", conf_level: float = 0.95) -> ICCResult:
    """Shrout-Fleiss (1979) intraclass correlation; ``ratings`` is targets x judges (wide), complete rows only.

    ``form`` is one of ICC(1,1), ICC(2,1), ICC(3,1), ICC(1,k), ICC(2,k), ICC(3,k). F test and CI as in
    McGraw & Wong (1996) / R's psych::ICC (ICC(2,*) CI by the Satterthwaite approximation). Hand-written:
    neither scipy nor statsmodels provides ICCs.
    """
    if form not in ICC_FORMS:
        raise ValueError(f"form must be one of {ICC_FORMS}")
    method = f"Intraclass correlation {form} (Shrout-Fleiss)"
    x = pd.DataFrame(ratings).apply(pd.to_numeric, errors="coerce").dropna().to_numpy(dtype=float)
    if x.shape[0] < 2 or x.shape[1] < 2:
        return empty_result(method, "need >= 2 complete targets and >= 2 judges", ICCResult, n=x.shape[0])
    n, k = x.shape
    ms = _icc_mean_squares(x)
    bms, wms, jms, ems = ms["bms"], ms["wms"], ms["jms"], ms["ems"]
    a = 1 - conf_level
    model, avg = form[4], form.endswith("k)")
    error_ms = wms if model == "1" else ems
    if error_ms == 0:
        # Every judge gave every target the same score: the ICC is 1, but its F test and interval divide by the
        # (zero) error mean square, so they are undefined; say so rather than print inf/nan.
        return ICCResult(method=method, estimate=1.0 if bms > 0 else None, n=n, conf_level=conf_level,
                         note="no residual variance (the judges agree exactly): no F test or interval",
                         form=form, n_judges=k, **ms)
    if model == "1":
        f, df1, df2 = bms / wms, n - 1, n * (k - 1)
        fl, fu = f / stats.f.ppf(1 - a / 2, df1, df2), f * stats.f.ppf(1 - a / 2, df2, df1)
        if avg:
            est, lo, hi = (bms - wms) / bms, 1 - 1 / fl, 1 - 1 / fu
        else:
            est = (bms - wms) / (bms + (k - 1) * wms)
            lo, hi = (fl - 1) / (fl + k - 1), (fu - 1) / (fu + k - 1)
    elif model == "3":
        f, df1, df2 = bms / ems, n - 1, (n - 1) * (k - 1)
        fl, fu = f / stats.f.ppf(1 - a / 2, df1, df2), f * stats.f.ppf(1 - a / 2, df2, df1)
        if avg:
            est, lo, hi = (bms - ems) / bms, 1 - 1 / fl, 1 - 1 / fu
        else:
            est = (bms - ems) / (bms + (k - 1) * ems)
            lo, hi = (fl - 1) / (fl + k - 1), (fu - 1) / (fu + k - 1)
    else:
        f, df1, df2 = bms / ems, n - 1, (n - 1) * (k - 1)
        icc21 = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
        fj = jms / ems
        vn = (k - 1) * (n - 1) * (k * icc21 * fj + n * (1 + (k - 1) * icc21) - k * icc21) ** 2
        vd = (n - 1) * k**2 * icc21**2 * fj**2 + (n * (1 + (k - 1) * icc21) - k * icc21) ** 2
        v = vn / vd
        f_u, f_l = stats.f.ppf(1 - a / 2, n - 1, v), stats.f.ppf(1 - a / 2, v, n - 1)
        lo = n * (bms - f_u * ems) / (f_u * (k * jms + (k * n - k - n) * ems) + n * bms)
        hi = n * (f_l * bms - ems) / (k * jms + (k * n - k - n) * ems + n * f_l * bms)
        if avg:
            est = (bms - ems) / (bms + (jms - ems) / n)
            lo, hi = lo * k / (1 + lo * (k - 1)), hi * k / (1 + hi * (k - 1))
        else:
            est = icc21
    return ICCResult(method=method, estimate=est, ci=(lo, hi), statistic=f, df=df2, p=stats.f.sf(f, df1, df2),
                     n=n, conf_level=conf_level, form=form, n_judges=k, df1=df1, df2=df2, **ms)


def icc_all(ratings: Any, conf_level: float = 0.95) -> dict[str, StatResult]:
    """All six Shrout-Fleiss ICCs, keyed by form name."""
    return {form: icc(ratings, form, conf_level) for form in ICC_FORMS}


def long_to_wide(df: pd.DataFrame, target: str, rater: str, score: str) -> pd.DataFrame:
    """Pivot (target, rater, score) rows into a targets x raters table (mean of duplicates)."""
    return df.pivot_table(index=target, columns=rater, values=score, aggfunc="mean")
