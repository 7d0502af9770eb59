"""Calibration of predicted probabilities (issue 21 item 3): Platt scaling and isotonic regression fitted on a
trial's reference set, reliability-diagram data, expected calibration error and the Brier score.

Plain NumPy/SciPy on arrays, no Django. A calibrator is fitted on reference cases (the expert classifier's
probability of a finding and the reference standard) and then applied to the drafts' probabilities.

- **Platt scaling** (Platt 1999): ``p' = 1 / (1 + exp(-(a * logit(p) + b)))``, a logistic regression of the outcome
  on the logit of the probability, by maximum likelihood (Newton-Raphson). With ``platt_targets=True`` the 0/1
  outcomes are replaced by Platt's smoothed targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``, which keeps the fit
  finite on separable reference sets; with ``False`` it is exactly R's ``glm(y ~ qlogis(p), family = binomial)``.
- **Isotonic regression**: the pool-adjacent-violators fit of the outcome on the probability (non-decreasing; ties
  in ``p`` pooled first, as R's ``isoreg`` treats them after ordering), applied by linear interpolation between the
  fitted points and held constant beyond them.
- **Reliability diagram**: bins of the probability (equal width, or equal count with ``strategy="quantile"``);
  per bin the count, mean predicted probability and observed rate.
- **ECE**: ``sum_b n_b / N * |observed_b - predicted_b|`` over those bins (Naeini et al., AAAI 2015); **MCE** the
  largest gap.
- **Brier score**: ``mean((p - y)^2)`` (Brier 1950), with Murphy's (1973) binned decomposition ``reliability -
  resolution + uncertainty`` (exact when every bin holds a single predicted value).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

EPS = 1e-12
Strategy = Literal["uniform", "quantile"]


def _arrays(p: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities but {y.size} outcomes")
    keep = np.isfinite(p) & np.isfinite(y)
    p, y = p[keep], y[keep]
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("outcomes must be 0 or 1")
    return p, y


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class PlattCalibrator:
    """``p' = expit(a * logit(p) + b)``, fitted on ``n`` reference cases (``converged``: Newton's steps settled)."""

    a: float
    b: float
    n: int
    converged: bool
    method: str = "platt"

    def apply(self, p: Any) -> np.ndarray:
        z = self.a * _logit(np.asarray(p, dtype=np.float64)) + self.b
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_platt(p: Any, y: Any, *, platt_targets: bool = True, max_iter: int = 100, tol: float = 1e-10
              ) -> PlattCalibrator:
    """Platt scaling by Newton-Raphson on the binomial log-likelihood (see the module docstring)."""
    p, y = _arrays(p, y)
    if p.size < 2:
        raise ValueError("Platt scaling needs at least two reference cases")
    t = y.copy()
    if platt_targets:
        n_pos, n_neg = float(y.sum()), float(y.size - y.sum())
        t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    x = np.column_stack([_logit(p), np.ones_like(p)])
    beta = np.zeros(2)
    converged = False
    for _ in range(max_iter):
        mu = 1.0 / (1.0 + np.exp(-(x @ beta)))
        w = np.maximum(mu * (1 - mu), EPS)
        grad = x.T @ (t - mu)
        hess = x.T @ (x * w[:, None])
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    return PlattCalibrator(a=float(beta[0]), b=float(beta[1]), n=int(p.size), converged=converged)


@dataclass(frozen=True)
class IsotonicCalibrator:
    """The pool-adjacent-violators fit: ``x`` (distinct probabilities, increasing) and ``fitted`` (non-decreasing)."""

    x: tuple[float, ...]
    fitted: tuple[float, ...]
    n: int
    method: str = "isotonic"

    def apply(self, p: Any) -> np.ndarray:
        return np.interp(np.asarray(p, dtype=np.float64), self.x, self.fitted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pava(values: Any, weights: Any | None = None) -> np.ndarray:
    """Pool adjacent violators: the weighted least-squares non-decreasing fit of ``values`` (in their order)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    means: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for vi, wi in zip(v, w, strict=True):
        means.append(float(vi))
        wts.append(float(wi))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, w2, s2 = means.pop(), wts.pop(), sizes.pop()
            m1, w1, s1 = means.pop(), wts.pop(), sizes.pop()
            means.append((m1 * w1 + m2 * w2) / (w1 + w2))
            wts.append(w1 + w2)
            sizes.append(s1 + s2)
    return np.repeat(means, sizes)


def fit_isotonic(p: Any, y: Any) -> IsotonicCalibrator:
    """Isotonic regression of the outcome on the probability (ties in ``p`` pooled first)."""
    p, y = _arrays(p, y)
    if p.size < 2:
        raise ValueError("isotonic calibration needs at least two reference cases")
    xs, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=y)
    fitted = pava(sums / counts, counts)
    return IsotonicCalibrator(x=tuple(float(v) for v in xs), fitted=tuple(float(v) for v in fitted), n=int(p.size))


def fit_calibrator(p: Any, y: Any, method: Literal["platt", "isotonic"] = "platt"
                   ) -> PlattCalibrator | IsotonicCalibrator:
    """A calibrator fitted on a trial's reference set (probabilities and reference-standard outcomes)."""
    if method == "platt":
        return fit_platt(p, y)
    if method == "isotonic":
        return fit_isotonic(p, y)
    raise ValueError(f"unknown calibration method {method!r}: use 'platt' or 'isotonic'")


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_predicted: float | None  # None for an empty bin
    observed_rate: float | None


@dataclass(frozen=True)
class CalibrationSummary:
    """Reliability-diagram data and scores of probabilities ``p`` against outcomes ``y``.

    ``bins``: the diagram (empty bins included, with None means); ``ece`` and ``mce`` over the non-empty bins;
    ``brier`` the Brier score and its binned Murphy decomposition (``reliability``, ``resolution``,
    ``uncertainty``); ``n`` cases, ``prevalence`` the observed rate."""

    n: int
    prevalence: float
    brier: float
    ece: float
    mce: float
    reliability: float
    resolution: float
    uncertainty: float
    strategy: str
    bins: list[ReliabilityBin] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def brier_score(p: Any, y: Any) -> float:
    p, y = _arrays(p, y)
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def _edges(p: np.ndarray, n_bins: int, strategy: Strategy) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
        return np.unique(edges)
    raise ValueError(f"unknown binning {strategy!r}: use 'uniform' or 'quantile'")


def reliability(p: Any, y: Any, n_bins: int = 10, strategy: Strategy = "uniform") -> CalibrationSummary:
    """The reliability diagram, ECE, MCE and Brier score (bins are [lower, upper), the last one closed)."""
    p, y = _arrays(p, y)
    if p.size == 0:
        raise ValueError("no probabilities with outcomes")
    edges = _edges(p, n_bins, strategy)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    bins: list[ReliabilityBin] = []
    ece = mce = rel = res = 0.0
    base = float(y.mean())
    for b in range(len(edges) - 1):
        mask = index == b
        count = int(mask.sum())
        if not count:
            bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), 0, None, None))
            continue
        conf, obs = float(p[mask].mean()), float(y[mask].mean())
        bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, conf, obs))
        gap = abs(obs - conf)
        ece += count / p.size * gap
        mce = max(mce, gap)
        rel += count / p.size * (conf - obs) ** 2
        res += count / p.size * (obs - base) ** 2
    return CalibrationSummary(
        n=int(p.size), prevalence=base, brier=float(np.mean((p - y) ** 2)), ece=ece, mce=mce, reliability=rel,
        resolution=res, uncertainty=base * (1 - base), strategy=strategy, bins=bins,
    )


def cross_fitted(p: Any, y: Any, method: Literal["platt", "isotonic"] = "platt", folds: int = 5) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each case calibrated by a calibrator fitted on the other folds
    (folds by position, ``i % folds``: deterministic). Evaluating a calibrator on its own reference cases would
    flatter it; this is what the report's calibrated ECE and Brier use."""
    p, y = _arrays(p, y)
    out = np.empty_like(p)
    fold = np.arange(p.size) % folds
    for k in range(folds):
        test = fold == k
        if not test.any():
            continue
        out[test] = fit_calibrator(p[~test], y[~test], method).apply(p[test])
    return out


#: Fewest cases of each class for the calibration report (fewer: a note instead).
MIN_PER_CLASS = 5


@dataclass(frozen=True)
class RecalibratedSummary(CalibrationSummary):
    """The reliability of cross-fitted recalibrated probabilities (``folds`` folds: each case's value from a
    calibrator that did not see it) and the ``calibrator`` fitted on all cases (to apply to new drafts)."""

    folds: int = 0
    calibrator: PlattCalibrator | IsotonicCalibrator | None = None


@dataclass(frozen=True)
class CalibrationReport:
    """One finding's calibration (:func:`calibration_report`): the ``raw`` probabilities' reliability, the
    cross-fitted ``platt`` and ``isotonic`` recalibrations, and ``shown``, the calibrated probabilities the drafts
    carried (added by the trial analysis where drafts had them); or only ``note`` (why there is none) with ``n``
    cases. An empty report (no probabilities at all) is ``{}`` in results.json. ``to_dict`` has the keys of the
    dict this class replaced."""

    raw: CalibrationSummary | None = None
    platt: RecalibratedSummary | None = None
    isotonic: RecalibratedSummary | None = None
    shown: CalibrationSummary | None = None
    note: str | None = None
    n: int | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.note is not None:
            return {"note": self.note, "n": self.n}
        return {f.name: getattr(self, f.name).to_dict() for f in fields(self)
                if f.name in ("raw", "platt", "isotonic", "shown") and getattr(self, f.name) is not None}


def calibration_report(p: Any, y: Any, n_bins: int = 10, folds: int = 5) -> CalibrationReport:
    """Raw and calibrated (Platt and isotonic, cross-fitted) reliability data, ECE and Brier score of one finding's
    probabilities against the reference standard, with each calibrator fitted on all cases (to apply to new
    drafts)."""
    p, y = _arrays(p, y)
    n_pos = int(y.sum())
    if min(n_pos, p.size - n_pos) < MIN_PER_CLASS:
        return CalibrationReport(note=f"calibration needs at least {MIN_PER_CLASS} cases with and without the "
                                      f"finding (has {n_pos} and {p.size - n_pos})", n=int(p.size))
    recalibrated = {}
    for method in ("platt", "isotonic"):
        summary = reliability(cross_fitted(p, y, method, folds), y, n_bins)
        recalibrated[method] = RecalibratedSummary(**{f.name: getattr(summary, f.name) for f in fields(summary)},
                                                   folds=folds, calibrator=fit_calibrator(p, y, method))
    return CalibrationReport(raw=reliability(p, y, n_bins), **recalibrated)
