"""Two-arm comparisons of a continuous outcome: t-tests, rank tests, relative reduction, ratio of geometric means.

All tests come from scipy.stats; only the delta-method interval for a ratio of means and the Hodges-Lehmann
estimates are written here (scipy has neither).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from ._result import UNSET, StatResult, as_float_array, empty_result

Alternative = Literal["two-sided", "less", "greater"]



@dataclass
class PairedTResult(StatResult):
    """Paired t-test: ``estimate`` mean(x - y); ``sd_difference`` the SD of the differences, ``mean_x``/``mean_y``
    the arm means."""

    alternative: str = UNSET
    sd_difference: float | None = UNSET
    mean_x: float | None = UNSET
    mean_y: float | None = UNSET


@dataclass
class WelchTResult(StatResult):
    """Welch's t-test: ``estimate`` mean(x) - mean(y); group sizes and means."""

    alternative: str = UNSET
    n_x: int = UNSET
    n_y: int = UNSET
    mean_x: float | None = UNSET
    mean_y: float | None = UNSET


@dataclass
class WilcoxonResult(StatResult):
    """Wilcoxon signed-rank test: ``statistic`` R's V, ``estimate`` the Hodges-Lehmann pseudo-median; ``p_method``
    exact or asymptotic."""

    alternative: str = UNSET
    n_nonzero: int = UNSET
    p_method: str = UNSET
    median_difference: float = UNSET


@dataclass
class MannWhitneyResult(StatResult):
    """Mann-Whitney U test: ``statistic`` U for x (R's W), ``estimate`` the Hodges-Lehmann shift;
    ``prob_superiority`` U / (n_x n_y) = P(X > Y) + P(X = Y) / 2."""

    alternative: str = UNSET
    n_x: int = UNSET
    n_y: int = UNSET
    prob_superiority: float = UNSET


@dataclass
class RelativeReductionResult(StatResult):
    """Relative reduction of the mean 1 - mean(treated) / mean(control): the means, their ratio and difference,
    group sizes; ``se_log_ratio`` (delta method) or ``seed``/``n_resamples``/``bootstrap_se`` (BCa bootstrap)."""

    paired: bool = UNSET
    mean_treated: float = UNSET
    mean_control: float = UNSET
    ratio_of_means: float = UNSET
    difference_of_means: float = UNSET
    n_treated: int = UNSET
    n_control: int = UNSET
    se_log_ratio: float = UNSET
    seed: int = UNSET
    n_resamples: int = UNSET
    bootstrap_se: float = UNSET


@dataclass
class GeometricMeanRatioResult(StatResult):
    """Ratio of geometric means treated / control: the geometric means and the relative change (ratio - 1)."""

    paired: bool = UNSET
    geomean_treated: float = UNSET
    geomean_control: float = UNSET
    relative_change: float = UNSET


def _paired_arrays(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_float_array(x), as_float_array(y)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _clean(x: Any) -> np.ndarray:
    a = as_float_array(x)
    return a[np.isfinite(a)]


def describe(x: Any) -> dict[str, float | int | None]:
    """n, mean, SD, median, quartiles (type-7, as R's default), min and max of the finite values of ``x``."""
    a = _clean(x)
    if a.size == 0:
        return {"n": 0, "mean": None, "sd": None, "median": None, "q1": None, "q3": None, "min": None, "max": None}
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if a.size > 1 else None,
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def paired_t_test(
    x: Any, y: Any, alternative: Alternative = "two-sided", conf_level: float = 0.95
) -> PairedTResult:
    """Paired t-test of mean(x - y) (scipy.stats.ttest_rel). Estimate is the mean difference x - y."""
    method = "Paired t-test"
    a, b = _paired_arrays(x, y)
    if a.size < 2:
        return empty_result(method, "fewer than 2 complete pairs", PairedTResult, n=a.size)
    res = stats.ttest_rel(a, b, alternative=alternative)
    ci = res.confidence_interval(conf_level)
    d = a - b
    return PairedTResult(
        method=method, estimate=d.mean(), ci=(ci.low, ci.high), statistic=res.statistic, df=res.df,
        p=res.pvalue, n=a.size, conf_level=conf_level,
        alternative=alternative, sd_difference=d.std(ddof=1), mean_x=a.mean(), mean_y=b.mean(),
    )


def welch_t_test(
    x: Any, y: Any, alternative: Alternative = "two-sided", conf_level: float = 0.95
) -> WelchTResult:
    """Welch's unequal-variance t-test (scipy.stats.ttest_ind, equal_var=False). Estimate is mean(x) - mean(y)."""
    method = "Welch two-sample t-test"
    a, b = _clean(x), _clean(y)
    if a.size < 2 or b.size < 2:
        return empty_result(method, "fewer than 2 observations in an arm", WelchTResult, n=a.size + b.size,
                            n_x=a.size, n_y=b.size)
    res = stats.ttest_ind(a, b, equal_var=False, alternative=alternative)
    ci = res.confidence_interval(conf_level)
    return WelchTResult(
        method=method, estimate=a.mean() - b.mean(), ci=(ci.low, ci.high), statistic=res.statistic, df=res.df,
        p=res.pvalue, n=a.size + b.size, conf_level=conf_level,
        alternative=alternative, n_x=a.size, n_y=b.size, mean_x=a.mean(), mean_y=b.mean(),
    )


def _walsh_median(d: np.ndarray) -> float:
    # Hodges-Lehmann pseudo-median (R's wilcox.test conf.int estimate); scipy has no implementation.
    # The median of the n (n + 1) / 2 Walsh averages (d_i + d_j) / 2, i <= j, selected without listing them:
    # the same float as np.median of the listed averages (tests/analysis/test_simulation_and_trial.py).
    if d.size == 0:
        return float("nan")
    if d.size > 3000:  # the plain median stands in at that size (kept as it was; results unchanged)
        return float(np.median(d))
    s = np.sort(np.asarray(d, dtype=float))
    n_sums = s.size * (s.size + 1) // 2
    low = _kth_pair_sum(s, (n_sums - 1) // 2) / 2.0
    if n_sums % 2:
        return float(low)
    return float(np.mean(np.array([low, _kth_pair_sum(s, n_sums // 2) / 2.0])))  # as np.median averages


def _first_above(s: np.ndarray, v: float) -> np.ndarray:
    """Per row i of the sorted ``s``: the first j >= i with fl(s_i + s_j) > v (n when none); the computed sums are
    non-decreasing in j, so a bisection over every row at once finds it exactly."""
    n = s.size
    lo, hi = np.arange(n), np.full(n, n)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        above = (s + s[np.minimum(mid, n - 1)]) > v
        hi = np.where(active & above, mid, hi)
        lo = np.where(active & ~above, mid + 1, lo)


def _kth_pair_sum(s: np.ndarray, k: int) -> float:
    """The k-th smallest (0-based) of fl(s_i + s_j) over i <= j for sorted ``s``: the smallest attained sum v with
    more than k sums <= v, by bisection over the order-preserving integer keys of the doubles (64 steps at most)."""
    rows = np.arange(s.size)

    def count_le(v: float) -> int:
        return int((_first_above(s, v) - rows).sum())

    lo, hi = _float_key(2 * s[0]) - 1, _float_key(2 * s[-1])  # below the smallest sum; the largest sum
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count_le(_key_float(mid)) > k:
            hi = mid
        else:
            lo = mid
    v = _key_float(hi)
    j = _first_above(s, np.nextafter(v, -np.inf))  # the row's first sum >= v; some row attains v exactly
    sums = s + s[np.minimum(j, s.size - 1)]
    return float(sums[(j < s.size) & (sums == v)][0])


def _float_key(x: float) -> int:
    """An integer that orders doubles as their values (-0.0 and 0.0 are adjacent)."""
    b = int(np.array(x, dtype=np.float64).view(np.int64))
    return b if b >= 0 else -(b & 0x7FFF_FFFF_FFFF_FFFF) - 1


def _key_float(k: int) -> float:
    b = k if k >= 0 else -(k + 1) | -0x8000_0000_0000_0000
    return float(np.array(b, dtype=np.int64).view(np.float64))


def wilcoxon_signed_rank(
    x: Any,
    y: Any | None = None,
    alternative: Alternative = "two-sided",
    method: Literal["auto", "exact", "asymptotic"] = "auto",
    correction: bool = True,
) -> WilcoxonResult:
    """Wilcoxon signed-rank test of x - y (scipy.stats.wilcoxon; ``auto`` = exact when n < 50 without ties or zeros).

    ``statistic`` is R's V (sum of ranks of positive differences, zeros dropped); ``estimate`` the Hodges-Lehmann
    pseudo-median of the differences. ``correction`` is the continuity correction of the normal approximation (R's
    default, so on by default).
    """
    name = "Wilcoxon signed-rank test"
    if y is None:
        d = _clean(x)
    else:
        a, b = _paired_arrays(x, y)
        d = a - b
    nz = d[d != 0]
    if nz.size == 0:
        return empty_result(name, "no non-zero differences", WilcoxonResult, n=d.size)
    used = method
    if method == "auto":  # R's rule: exact when n < 50 with no ties and no zeros, else normal approximation
        has_ties = np.unique(np.abs(nz)).size < nz.size
        used = "exact" if (nz.size < 50 and not has_ties and nz.size == d.size) else "asymptotic"
    res = stats.wilcoxon(nz, alternative=alternative, method=used, correction=correction)
    ranks = stats.rankdata(np.abs(nz))
    v = float(ranks[nz > 0].sum())
    return WilcoxonResult(
        method=f"{name} ({used})", estimate=_walsh_median(d), statistic=v, p=res.pvalue, n=d.size,
        alternative=alternative, n_nonzero=nz.size, p_method=used, median_difference=float(np.median(d)),
    )


def mann_whitney(
    x: Any, y: Any, alternative: Alternative = "two-sided", method: Literal["auto", "exact", "asymptotic"] = "auto"
) -> MannWhitneyResult:
    """Mann-Whitney U / Wilcoxon rank-sum test (scipy.stats.mannwhitneyu; continuity-corrected when asymptotic).

    ``statistic`` is U for x (R's W); ``estimate`` is the Hodges-Lehmann shift (median of all x_i - y_j);
    ``prob_superiority`` is U / (n_x n_y) = P(X > Y) + P(X = Y) / 2 (:class:`MannWhitneyResult`).
    """
    name = "Mann-Whitney U test"
    a, b = _clean(x), _clean(y)
    if a.size == 0 or b.size == 0:
        return empty_result(name, "an arm is empty", MannWhitneyResult, n=a.size + b.size, n_x=a.size, n_y=b.size)
    res = stats.mannwhitneyu(a, b, alternative=alternative, method=method, use_continuity=True)
    diffs = (a[:, None] - b[None, :]).ravel() if a.size * b.size <= 4_000_000 else a.mean() - b.mean()
    return MannWhitneyResult(
        method=f"{name} ({method})", estimate=float(np.median(diffs)), statistic=res.statistic, p=res.pvalue,
        n=a.size + b.size, alternative=alternative, n_x=a.size, n_y=b.size,
        prob_superiority=float(res.statistic) / (a.size * b.size),
    )


def relative_reduction(
    treated: Any,
    control: Any,
    paired: bool = True,
    conf_level: float = 0.95,
    method: Literal["delta", "bootstrap"] = "delta",
    n_resamples: int = 4999,
    seed: int = 20250101,
) -> RelativeReductionResult:
    """Relative reduction of the mean, 1 - mean(treated) / mean(control) (e.g. reading time), with a CI.

    ``method='delta'`` (default): delta method on log(mean_t / mean_c), using the within-pair covariance when paired,
    interval computed on the log scale and transformed back (hand-written: no library routine for it).
    ``method='bootstrap'``: scipy.stats.bootstrap (BCa, paired resampling when paired) with the fixed ``seed``.
    A positive estimate means the treated arm has the smaller mean.
    """
    name = f"Relative reduction of the mean ({'delta method, log scale' if method == 'delta' else 'BCa bootstrap'})"
    if paired:
        t, c = _paired_arrays(treated, control)
    else:
        t, c = _clean(treated), _clean(control)
    if t.size < 2 or c.size < 2:
        return empty_result(name, "fewer than 2 observations in an arm", RelativeReductionResult,
                            n=t.size + (0 if paired else c.size))
    mt, mc = t.mean(), c.mean()
    if mt <= 0 or mc <= 0:
        return empty_result(name, "means must be positive", RelativeReductionResult, n=t.size)
    ratio = mt / mc
    details: dict[str, Any] = {"paired": paired, "mean_treated": mt, "mean_control": mc, "ratio_of_means": ratio,
                              "difference_of_means": mt - mc, "n_treated": t.size, "n_control": c.size}
    if method == "delta":
        var = t.var(ddof=1) / (t.size * mt**2) + c.var(ddof=1) / (c.size * mc**2)
        if paired:
            var -= 2 * np.cov(t, c, ddof=1)[0, 1] / (t.size * mt * mc)
        se = float(np.sqrt(max(var, 0.0)))
        z = stats.norm.ppf(0.5 + conf_level / 2)
        lo, hi = np.exp(np.log(ratio) - z * se), np.exp(np.log(ratio) + z * se)
        details["se_log_ratio"] = se
        zstat = np.log(ratio) / se if se > 0 else float("nan")
        p = 2 * stats.norm.sf(abs(zstat)) if se > 0 else float("nan")
        return RelativeReductionResult(method=name, estimate=1 - ratio, ci=(1 - hi, 1 - lo), statistic=zstat, p=p,
                                       n=t.size if paired else t.size + c.size, conf_level=conf_level, **details)
    rng = np.random.default_rng(seed)

    def stat(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return 1 - np.mean(a, axis=axis) / np.mean(b, axis=axis)

    bs = stats.bootstrap((t, c), stat, paired=paired, vectorized=True, confidence_level=conf_level,
                         n_resamples=n_resamples, method="BCa", random_state=rng)
    details.update(seed=seed, n_resamples=n_resamples, bootstrap_se=bs.standard_error)
    return RelativeReductionResult(method=name, estimate=1 - ratio,
                                   ci=(bs.confidence_interval.low, bs.confidence_interval.high),
                                   n=t.size if paired else t.size + c.size, conf_level=conf_level, **details)


def geometric_mean_ratio(
    treated: Any, control: Any, paired: bool = True, conf_level: float = 0.95
) -> GeometricMeanRatioResult:
    """Ratio of geometric means treated / control with a t interval on the log scale.

    Paired: one-sample t on log(treated) - log(control) (scipy ttest_rel); unpaired: Welch t on the logs.
    Non-positive values are dropped (they have no logarithm).
    """
    name = f"Ratio of geometric means ({'paired' if paired else 'Welch'} t on log scale)"
    if paired:
        t, c = _paired_arrays(treated, control)
        keep = (t > 0) & (c > 0)
        t, c = t[keep], c[keep]
        ok = t.size >= 2
    else:
        t, c = _clean(treated), _clean(control)
        t, c = t[t > 0], c[c > 0]
        ok = t.size >= 2 and c.size >= 2
    if not ok:
        return empty_result(name, "fewer than 2 positive observations in an arm", GeometricMeanRatioResult, n=t.size)
    lt, lc = np.log(t), np.log(c)
    res = stats.ttest_rel(lt, lc) if paired else stats.ttest_ind(lt, lc, equal_var=False)
    ci = res.confidence_interval(conf_level)
    est = float(np.exp(lt.mean() - lc.mean()))
    return GeometricMeanRatioResult(
        method=name, estimate=est, ci=(np.exp(ci.low), np.exp(ci.high)), statistic=res.statistic, df=res.df,
        p=res.pvalue, n=t.size if paired else t.size + c.size, conf_level=conf_level,
        paired=paired, geomean_treated=float(np.exp(lt.mean())), geomean_control=float(np.exp(lc.mean())),
        relative_change=est - 1,
    )
