"""Ranking from pairwise judgements (a "report arena"): Bradley-Terry with an explicit tie model.

Each comparison shows one report on the left (A) and one on the right (B); the expert prefers left, right, or neither
(a tie). Items (arms, model versions) have log-strengths beta (the reference item's is 0) and the left position may
carry an order effect alpha (added to the left item's log-strength, as a home advantage). With
d = beta_left + alpha - beta_right:

- ``tie_model='davidson'`` (Davidson 1970): P(left) : P(right) : P(tie) = e^(d/2) : e^(-d/2) : nu, nu = e^tau >= 0.
  Written this way it is a log-linear (multinomial logit) model, which is how tests/analysis/r/davidson_fit.R fits it
  with R's glm to check this code.
- ``tie_model='rao_kupper'`` (Rao and Kupper 1967): P(left) = 1 / (1 + theta e^-d), P(right) = 1 / (1 + theta e^d),
  the rest is a tie; theta = 1 + e^tau >= 1.
- ``tie_model='none'``: the plain Bradley-Terry model, P(left) = 1 / (1 + e^-d), ties dropped (with alpha fixed at 0
  it is the model ``choix`` fits; tests compare the two).

Ties are never counted as half wins: that changes the likelihood and understates the uncertainty. Estimates are
maximum likelihood (scipy), Wald SEs from the observed information, and percentile CIs from a two-way bootstrap that
resamples cases and experts independently (a comparison enters a resample once per draw of its case times once per
draw of its expert), because judgements are clustered by both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from ._result import jsonable
from .proportions import clopper_pearson

TieModel = Literal["davidson", "rao_kupper", "none"]
TIE_MODELS = ("davidson", "rao_kupper", "none")
OUTCOMES = ("left", "right", "tie")
_BOUND = 30.0  # |log-strength| cap: an item that never wins has an infinite MLE; the cap keeps resamples finite
_SEPARATED = 15.0  # |log-strength| beyond this (odds over 3 million to 1) is read as an infinite MLE: separation


@dataclass(frozen=True)
class ItemStrength:
    """One item's place in the ranking.

    ``log_strength`` is relative to the reference item (0 for it); ``se`` its Wald SE; ``ci`` the bootstrap percentile
    interval (Wald when no bootstrap ran); ``p_beats_reference`` = 1 / (1 + e^-beta), the chance it wins a decisive
    comparison with the reference; ``rank`` 1 = strongest and ``rank_ci`` the bootstrap interval of the rank;
    ``wins``/``losses``/``ties`` the raw counts over its comparisons.
    """

    item: str
    log_strength: float
    se: float | None
    ci: tuple[float | None, float | None]
    p_beats_reference: float
    rank: int
    rank_ci: tuple[int, int] | None
    wins: int
    losses: int
    ties: int


@dataclass
class BradleyTerryResult:
    """A fitted Bradley-Terry model with ties (see the module docstring for the parametrisation).

    ``tie_parameter`` is nu (Davidson) or theta (Rao-Kupper), None without a tie model; ``position_effect`` is alpha,
    the left position's log-strength bonus (0 and not estimated when ``position=False``). CIs are bootstrap percentile
    intervals when ``n_bootstrap`` > 0, else Wald. ``n_bootstrap_failed`` counts resamples whose fit did not converge
    or with fewer than two items (left out of the intervals); ``n_bootstrap_at_bound`` those where an item never
    won or never lost, so its log-strength ran off towards infinity (past +-15; separation: the intervals then mean
    little).
    """

    method: str
    tie_model: str
    reference: str | None
    items: list[ItemStrength]
    n_comparisons: int
    n_ties: int
    tie_parameter: float | None = None
    tie_parameter_ci: tuple[float | None, float | None] | None = None
    position_effect: float | None = None
    position_effect_se: float | None = None
    position_effect_ci: tuple[float | None, float | None] | None = None
    log_likelihood: float | None = None
    converged: bool = False
    n_bootstrap: int = 0
    n_bootstrap_failed: int = 0
    bootstrap_clusters: tuple[str, ...] = ()
    conf_level: float = 0.95
    n_bootstrap_at_bound: int = 0
    note: str = ""

    def item(self, name: str) -> ItemStrength:
        return next(i for i in self.items if i.item == name)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass
class PositionBias:
    """Model-free order effect: how often the left (A) report was preferred among decisive judgements, with its
    Clopper-Pearson interval and the exact binomial test against 1/2 (valid because sides are randomised)."""

    n_decisive: int
    left_preferred: int
    share_left: float | None
    ci: tuple[float | None, float | None] | None
    p: float | None


@dataclass
class TieRate:
    """Share of judgements that were ties, overall (CI by the same case x expert bootstrap) and per pair of items."""

    n: int
    ties: int
    rate: float | None
    ci: tuple[float | None, float | None] | None
    by_pair: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ArenaRanking:
    """What the report shows for a set of pairwise judgements: the ranking, the position bias and the tie rate."""

    ranking: BradleyTerryResult
    position_bias: PositionBias
    tie_rate: TieRate

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


# ---------------------------------------------------------------------------------------------------------------------
# Data


def comparisons_from_ratings(ratings: pd.DataFrame, item_a: str = "arm_a", item_b: str = "arm_b",
                             preference: str = "preference") -> pd.DataFrame:
    """Export ratings (A shown on the left, B on the right; preference 'A', 'B' or 'none') as comparisons with
    columns left, right, outcome ('left'/'right'/'tie'), case, expert. Single-report ratings and rows without a
    preference are dropped."""
    cols = ["left", "right", "outcome", "case", "expert"]
    if ratings is None or ratings.empty or item_b not in ratings or preference not in ratings:
        return pd.DataFrame(columns=cols)
    r = ratings.copy()
    r = r[r[item_b].notna() & (r[item_b].astype(str) != "") & r[preference].notna()]
    pref = r[preference].astype(str)
    outcome = pref.map({"A": "left", "B": "right", "none": "tie"})
    out = pd.DataFrame({
        "left": r[item_a].astype(str), "right": r[item_b].astype(str), "outcome": outcome,
        "case": r["case_code"].astype(str) if "case_code" in r else pd.Series(range(len(r)), index=r.index).astype(str),
        "expert": r["expert"].astype(str) if "expert" in r else "all",
    })
    return out[out["outcome"].notna()].reset_index(drop=True)


@dataclass
class _Data:
    items: list[str]
    left: np.ndarray  # item index per comparison
    right: np.ndarray
    outcome: np.ndarray  # 0 left, 1 right, 2 tie
    clusters: dict[str, np.ndarray]  # cluster name -> integer codes per comparison


def _prepare(comparisons: pd.DataFrame, clusters: tuple[str, ...]) -> _Data:
    d = comparisons.dropna(subset=["left", "right", "outcome"])
    d = d[d["left"].astype(str) != d["right"].astype(str)]
    bad = set(d["outcome"].astype(str).unique().tolist()) - set(OUTCOMES)
    if bad:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {sorted(bad)}")
    left, right = d["left"].astype(str), d["right"].astype(str)
    items = sorted(set(left.unique().tolist()) | set(right.unique().tolist()))
    index = pd.Index(items)
    codes = {c: pd.factorize(d[c].astype(str))[0] for c in clusters if c in d}
    return _Data(items, index.get_indexer(left).astype(int), index.get_indexer(right).astype(int),
                 pd.Index(OUTCOMES).get_indexer(d["outcome"].astype(str)).astype(int), codes)


def _counts(data: _Data, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted counts per ordered (left, right) pair: (pairs [m x 2], counts [m x 3] for left/right/tie, mask)."""
    k = len(data.items)
    key = data.left * k + data.right
    counts = np.zeros((k * k, 3))
    for o in range(3):
        sel = data.outcome == o
        counts[:, o] = np.bincount(key[sel], weights=weights[sel], minlength=k * k)
    used = counts.sum(axis=1) > 0
    keys = np.flatnonzero(used)
    return np.column_stack([keys // k, keys % k]), counts[used], used


# ---------------------------------------------------------------------------------------------------------------------
# Likelihood


def _unpack(theta: np.ndarray, k: int, ref: int, tie_model: str, position: bool) -> tuple[np.ndarray, float, float]:
    beta = np.zeros(k)
    beta[np.arange(k) != ref] = theta[:k - 1]
    j = k - 1
    tau = 0.0
    if tie_model != "none":
        tau = float(theta[j])
        j += 1
    alpha = float(theta[j]) if position else 0.0
    return beta, tau, alpha


def _log_probs(d: np.ndarray, tau: float, tie_model: str) -> np.ndarray:
    """log P(left), log P(right), log P(tie) for each difference d (rows), numerically stable."""
    if tie_model == "davidson":
        eta = np.column_stack([d / 2, -d / 2, np.full_like(d, tau)])
        return eta - np.logaddexp.reduce(eta, axis=1, keepdims=True)
    if tie_model == "none":
        return np.column_stack([-np.logaddexp(0, -d), -np.logaddexp(0, d), np.full_like(d, -np.inf)])
    log_theta = np.logaddexp(0, tau)  # theta = 1 + e^tau
    lp_l = -np.logaddexp(0, log_theta - d)
    lp_r = -np.logaddexp(0, log_theta + d)
    # P(tie) = 1 - P(L) - P(R) = (theta^2 - 1) e^d / ((e^d + theta)(1 + theta e^d)), in logs
    log_t2m1 = np.log(np.expm1(2 * log_theta)) if log_theta < 20 else 2 * log_theta
    lp_t = log_t2m1 + d - np.logaddexp(d, log_theta) - np.logaddexp(0, log_theta + d)
    return np.column_stack([lp_l, lp_r, lp_t])


def _negloglik(theta: np.ndarray, pairs: np.ndarray, counts: np.ndarray, k: int, ref: int, tie_model: str,
               position: bool) -> tuple[float, np.ndarray]:
    """Negative log-likelihood and its gradient in theta (analytic: the bootstrap refits hundreds of times)."""
    beta, tau, alpha = _unpack(theta, k, ref, tie_model, position)
    d = beta[pairs[:, 0]] + alpha - beta[pairs[:, 1]]
    lp = _log_probs(d, tau, tie_model)
    c_l, c_r, c_t = counts[:, 0], counts[:, 1], counts[:, 2]
    n = counts.sum(axis=1)
    p_l, p_r = np.exp(lp[:, 0]), np.exp(lp[:, 1])
    g_tau = 0.0
    if tie_model == "none":
        ll = c_l * lp[:, 0] + c_r * lp[:, 1]
        g_d = c_l * p_r - c_r * p_l
    elif tie_model == "davidson":
        ll = (counts * lp).sum(axis=1)
        g_d = (c_l - c_r) / 2 - n * (p_l - p_r) / 2
        g_tau = float((c_t - n * np.exp(lp[:, 2])).sum())
    else:
        ll = (counts * lp).sum(axis=1)
        th = 1 + np.exp(tau)
        g_d = c_l * (1 - p_l) - c_r * (1 - p_r) + c_t * (p_r - p_l)
        dth = (-(c_l * (1 - p_l)) - c_r * (1 - p_r)) / th \
            + c_t * (2 * th / (th * th - 1) - (1 - p_l) / th - (1 - p_r) / th)
        g_tau = float(dth.sum() * (th - 1))
    g_beta = np.bincount(pairs[:, 0], weights=g_d, minlength=k) - np.bincount(pairs[:, 1], weights=g_d, minlength=k)
    grad = list(g_beta[np.arange(k) != ref])
    if tie_model != "none":
        grad.append(g_tau)
    if position:
        grad.append(float(g_d.sum()))
    return float(-ll.sum()), -np.array(grad)


def _hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central finite-difference Hessian of a smooth scalar function."""
    n = len(x)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i, e_j = np.eye(n)[i] * h, np.eye(n)[j] * h
            v = (f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j) + f(x - e_i - e_j)) / (4 * h * h)
            out[i, j] = out[j, i] = v
    return out


def _fit(pairs: np.ndarray, counts: np.ndarray, k: int, ref: int, tie_model: str, position: bool,
         start: np.ndarray | None = None) -> tuple[np.ndarray, float, bool]:
    n_par = k - 1 + (tie_model != "none") + position
    x0 = np.zeros(n_par) if start is None else start
    if start is None and tie_model != "none":
        x0[k - 1] = 0.0 if tie_model == "davidson" else np.log(0.5)
    bounds = [(-_BOUND, _BOUND)] * (k - 1) + [(-20.0, 20.0)] * (n_par - k + 1)
    res = optimize.minimize(_negloglik, x0, args=(pairs, counts, k, ref, tie_model, position), method="L-BFGS-B",
                            jac=True, bounds=bounds, options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    # L-BFGS-B may stop on a line search at the optimum with a tolerance this tight: judge by the gradient instead.
    ok = bool(res.success) or float(np.max(np.abs(res.jac))) < 1e-4 * max(1.0, float(counts.sum()) / 100)
    return res.x, -float(res.fun), ok


# ---------------------------------------------------------------------------------------------------------------------
# Public functions


def _bootstrap_weights(data: _Data, rng: np.random.Generator) -> np.ndarray:
    w = np.ones(len(data.left))
    for codes in data.clusters.values():
        n = int(codes.max()) + 1 if len(codes) else 0
        draws = np.bincount(rng.integers(0, n, n), minlength=n)
        w = w * draws[codes]
    return w


def _bootstrap_draws(data: _Data, n_bootstrap: int, seed: int) -> list[np.ndarray]:
    """Per cluster, a [n_bootstrap x levels] matrix of how often each level is drawn: the same draws, from the same
    random stream in the same order, as ``n_bootstrap`` calls of :func:`_bootstrap_weights`."""
    rng = np.random.default_rng(seed)
    sizes = [int(codes.max()) + 1 if len(codes) else 0 for codes in data.clusters.values()]
    draws = [np.zeros((n_bootstrap, n)) for n in sizes]
    for b in range(n_bootstrap):
        for d, n in zip(draws, sizes, strict=True):
            d[b] = np.bincount(rng.integers(0, n, n), minlength=n)
    return draws


def _bootstrap_cell_counts(data: _Data, n_bootstrap: int, seed: int) -> np.ndarray:
    """Weighted counts per (left, right, outcome) cell in every resample, [n_bootstrap x (k * k * 3)], without
    building the per-comparison weights: a comparison's weight is the product of its clusters' draw counts, so the
    counts are (case draws) x (comparisons per case, expert and cell) x (expert draws). Every term is a whole number
    (far below 2^53), so the sums equal :func:`_counts` of :func:`_bootstrap_weights` exactly."""
    k = len(data.items)
    n_cell = k * k * 3
    cell = (data.left * k + data.right) * 3 + data.outcome
    codes = list(data.clusters.values())
    draws = _bootstrap_draws(data, n_bootstrap, seed)
    if not codes:
        return np.tile(np.bincount(cell, minlength=n_cell).astype(float), (n_bootstrap, 1))
    if len(codes) == 1:
        one = sp.csr_matrix((np.ones(len(cell)), (codes[0], cell)), shape=(draws[0].shape[1], n_cell))
        return np.asarray((one.T @ draws[0].T).T)
    if len(codes) > 2:  # not used by the arena (cases x experts); the plain way
        out = np.zeros((n_bootstrap, n_cell))
        for b in range(n_bootstrap):
            w = np.ones(len(cell))
            for c, d in zip(codes, draws, strict=True):
                w = w * d[b][c]
            out[b] = np.bincount(cell, weights=w, minlength=n_cell)
        return out
    big, small = (0, 1) if draws[0].shape[1] >= draws[1].shape[1] else (1, 0)
    n_small = draws[small].shape[1]
    table = sp.csr_matrix((np.ones(len(cell)), (codes[big], codes[small] * n_cell + cell)),
                          shape=(draws[big].shape[1], n_small * n_cell))
    per_small = np.asarray((table.T @ draws[big].T).T).reshape(n_bootstrap, n_small, n_cell)
    return np.einsum("bsc,bs->bc", per_small, draws[small])


def _bootstrap(data: _Data, ref: int, tie_model: str, position: bool, theta: np.ndarray, n_bootstrap: int,
               seed: int) -> tuple[np.ndarray, list[float], list[float], int]:
    """Refits on ``n_bootstrap`` case x expert resamples: (log-strengths [b x k], tie parameters, alphas, failures)."""
    k = len(data.items)
    boot_beta, boot_tie, boot_alpha, failed = [], [], [], 0
    cell_counts = _bootstrap_cell_counts(data, n_bootstrap, seed).reshape(n_bootstrap, k * k, 3)
    # two items (the two-arm trial): the exact maximum of every resample at once where it is interior
    direct, direct_ok = (_fit_two_davidson(cell_counts, ref) if k == 2 and tie_model == "davidson" and position
                         else (None, np.zeros(n_bootstrap, bool)))
    for b, counts in enumerate(cell_counts):
        if direct_ok[b]:
            bt = direct[b]
        else:
            used = counts.sum(axis=1) > 0
            keys = np.flatnonzero(used)
            bp, bc = np.column_stack([keys // k, keys % k]), counts[used]
            present = np.zeros(k, bool)
            present[bp.ravel()] = True
            if not present.all():
                failed += 1
                continue
            bt, _, bok = _fit(bp, bc, k, ref, tie_model, position, start=theta.copy())
            if not bok:
                failed += 1
                continue
        b_beta, b_tau, b_alpha = _unpack(bt, k, ref, tie_model, position)
        boot_beta.append(b_beta)
        boot_tie.append(_tie_parameter(b_tau, tie_model) if tie_model != "none" else np.nan)
        boot_alpha.append(b_alpha)
    return (np.array(boot_beta) if boot_beta else np.empty((0, k))), boot_tie, boot_alpha, failed


def _ranks(beta: np.ndarray) -> np.ndarray:
    return stats.rankdata(-beta, method="min").astype(int)


def _pct_ci(x: np.ndarray, conf_level: float) -> tuple[float | None, float | None]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return (None, None)
    q = (1 - conf_level) / 2
    return (float(np.quantile(x, q)), float(np.quantile(x, 1 - q)))


def _item_rows(data: _Data, ref: int, beta: np.ndarray, se_beta: np.ndarray, bb: np.ndarray, zq: float,
               conf_level: float) -> list[ItemStrength]:
    """One row per item, strongest first: estimate, SE, CI (bootstrap, else Wald), rank and its interval, counts."""
    ranks = _ranks(beta)
    rank_boot = np.array([_ranks(b) for b in bb]) if len(bb) else None
    items = []
    for i, name in enumerate(data.items):
        in_left, in_right = data.left == i, data.right == i
        wins = int(((data.outcome == 0) & in_left).sum() + ((data.outcome == 1) & in_right).sum())
        losses = int(((data.outcome == 1) & in_left).sum() + ((data.outcome == 0) & in_right).sum())
        ties = int(((data.outcome == 2) & (in_left | in_right)).sum())
        if i == ref:
            ci: tuple[float | None, float | None] = (0.0, 0.0)
        elif len(bb):
            ci = _pct_ci(bb[:, i], conf_level)
        else:
            ci = (float(beta[i] - zq * se_beta[i]), float(beta[i] + zq * se_beta[i]))
        rank_ci = None
        if rank_boot is not None:
            lo, hi = _pct_ci(rank_boot[:, i].astype(float), conf_level)
            rank_ci = (int(np.floor(lo)), int(np.ceil(hi)))
        items.append(ItemStrength(item=name, log_strength=float(beta[i]),
                                  se=None if i == ref else _finite(se_beta[i]), ci=ci,
                                  p_beats_reference=float(1 / (1 + np.exp(-beta[i]))), rank=int(ranks[i]),
                                  rank_ci=rank_ci, wins=wins, losses=losses, ties=ties))
    items.sort(key=lambda it: (it.rank, it.item))
    return items


def bradley_terry(
    comparisons: pd.DataFrame,
    tie_model: TieModel = "davidson",
    reference: str | None = None,
    position: bool = True,
    n_bootstrap: int = 0,
    clusters: tuple[str, ...] = ("case", "expert"),
    conf_level: float = 0.95,
    seed: int = 0,
) -> BradleyTerryResult:
    """Fit Bradley-Terry with a tie model to ``comparisons`` (columns left, right, outcome in 'left'/'right'/'tie';
    plus the cluster columns for the bootstrap, e.g. from :func:`comparisons_from_ratings`).

    ``reference`` (default: the first item in sorted order) has log-strength 0; ``position`` estimates the left
    position's effect alpha; ``n_bootstrap`` > 0 adds percentile CIs from resampling the ``clusters`` columns that are
    present (cases and experts, independently). With ``tie_model='none'`` ties are dropped (and counted in n_ties).
    """
    if tie_model not in TIE_MODELS:
        raise ValueError(f"tie_model must be one of {TIE_MODELS}")
    # Single-threaded BLAS: L-BFGS-B's small products run ~30x slower with threads competing on a loaded machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return _bradley_terry(comparisons, tie_model, reference, position, n_bootstrap, clusters, conf_level, seed)


def _bradley_terry(comparisons: pd.DataFrame, tie_model: TieModel, reference: str | None, position: bool,
                   n_bootstrap: int, clusters: tuple[str, ...], conf_level: float, seed: int) -> BradleyTerryResult:
    method = {"davidson": "Bradley-Terry with Davidson ties", "rao_kupper": "Bradley-Terry with Rao-Kupper ties",
              "none": "Bradley-Terry (ties dropped)"}[tie_model] + (" and a position effect" if position else "")
    empty = BradleyTerryResult(method=method, tie_model=tie_model, reference=reference, items=[], n_comparisons=0,
                               n_ties=0, conf_level=conf_level)
    if comparisons is None or len(comparisons) == 0:
        empty.note = "no comparisons"
        return empty
    data = _prepare(comparisons, clusters)
    n_ties = int((data.outcome == 2).sum())
    if tie_model == "none":
        keep = data.outcome != 2
        data = _Data(data.items, data.left[keep], data.right[keep], data.outcome[keep],
                     {c: v[keep] for c, v in data.clusters.items()})
    k = len(data.items)
    if k < 2 or len(data.left) == 0:
        empty.n_ties, empty.note = n_ties, "need comparisons between at least two items"
        return empty
    reference = str(reference) if reference is not None else data.items[0]
    if reference not in data.items:
        raise ValueError(f"reference {reference!r} is not among the items {data.items}")
    ref = data.items.index(reference)
    pairs, counts, _ = _counts(data, np.ones(len(data.left)))
    theta, loglik, ok = _fit(pairs, counts, k, ref, tie_model, position)
    beta, tau, alpha = _unpack(theta, k, ref, tie_model, position)

    def f(t):
        return _negloglik(t, pairs, counts, k, ref, tie_model, position)[0]

    try:
        cov = np.linalg.inv(_hessian(f, theta))
        se_theta = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se_theta = np.full(len(theta), np.nan)
    se_beta = np.zeros(k)
    se_beta[np.arange(k) != ref] = se_theta[:k - 1]
    zq = float(stats.norm.ppf(0.5 + conf_level / 2))

    used_clusters = tuple(c for c in clusters if c in data.clusters)
    bb, boot_tie, boot_alpha, failed = _bootstrap(data, ref, tie_model, position, theta, n_bootstrap, seed)
    items = _item_rows(data, ref, beta, se_beta, bb, zq, conf_level)
    at_bound = int((np.abs(bb) > _SEPARATED).any(axis=1).sum()) if len(bb) else 0
    note = (f"{at_bound} of {len(bb)} bootstrap resamples separated (an item never won or never lost): too few "
            "judgements for stable intervals" if at_bound else "")

    tie_par = tie_ci = None
    if tie_model != "none":
        tie_par = _tie_parameter(tau, tie_model)
        if boot_tie:
            tie_ci = _pct_ci(np.array(boot_tie), conf_level)
        else:
            se_tau = se_theta[k - 1]
            tie_ci = (_tie_parameter(tau - zq * se_tau, tie_model), _tie_parameter(tau + zq * se_tau, tie_model))
    pos_se = pos_ci = None
    if position:
        pos_se = _finite(se_theta[-1])
        pos_ci = _pct_ci(np.array(boot_alpha), conf_level) if boot_alpha else (
            (alpha - zq * pos_se, alpha + zq * pos_se) if pos_se is not None else None)
    return BradleyTerryResult(
        method=method, tie_model=tie_model, reference=reference, items=items, n_comparisons=len(data.left),
        n_ties=n_ties, tie_parameter=tie_par, tie_parameter_ci=tie_ci, position_effect=alpha if position else None,
        position_effect_se=pos_se, position_effect_ci=pos_ci, log_likelihood=loglik, converged=ok,
        n_bootstrap=n_bootstrap, n_bootstrap_failed=failed, bootstrap_clusters=used_clusters if n_bootstrap else (),
        conf_level=conf_level, n_bootstrap_at_bound=at_bound, note=note)


def _tie_parameter(tau: float, tie_model: str) -> float:
    return float(np.exp(tau)) if tie_model == "davidson" else float(1 + np.exp(tau))


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def position_bias(comparisons: pd.DataFrame, conf_level: float = 0.95) -> PositionBias:
    """Share of decisive judgements that preferred the left report (exact binomial test against 1/2)."""
    if comparisons is None or comparisons.empty:
        return PositionBias(0, 0, None, None, None)
    o = comparisons["outcome"].astype(str)
    n = int(o.isin(["left", "right"]).sum())
    left = int((o == "left").sum())
    if n == 0:
        return PositionBias(0, 0, None, None, None)
    ci = clopper_pearson(left, n, conf_level)
    return PositionBias(n, left, left / n, ci, float(stats.binomtest(left, n, 0.5).pvalue))


def tie_rate(comparisons: pd.DataFrame, n_bootstrap: int = 0, clusters: tuple[str, ...] = ("case", "expert"),
             conf_level: float = 0.95, seed: int = 0) -> TieRate:
    """Overall tie share (bootstrap CI over cases x experts when ``n_bootstrap`` > 0) and per unordered pair."""
    if comparisons is None or comparisons.empty:
        return TieRate(0, 0, None, None)
    tie = (comparisons["outcome"].astype(str) == "tie").to_numpy()
    n, t = len(tie), int(tie.sum())
    ci = None
    if n_bootstrap > 0:
        data = _prepare(comparisons, clusters)
        counts = _bootstrap_cell_counts(data, n_bootstrap, seed).reshape(n_bootstrap, -1, 3)
        total, ties = counts.sum(axis=(1, 2)), counts[:, :, 2].sum(axis=1)
        ci = _pct_ci(ties[total > 0] / total[total > 0], conf_level)
    by_pair: dict[str, dict[str, Any]] = {}
    left, right = comparisons["left"].astype(str), comparisons["right"].astype(str)
    first = left.where(left <= right, right)  # " vs ".join(sorted((left, right))), vectorised
    key = (first + " vs " + right.where(left <= right, left)).to_numpy()
    for name, g in pd.Series(tie, index=key).groupby(level=0):
        by_pair[str(name)] = {"n": len(g), "ties": int(g.sum()), "rate": float(g.mean())}
    return TieRate(n, t, t / n, ci, by_pair)


def arena_ranking(comparisons: pd.DataFrame, tie_model: TieModel = "davidson", reference: str | None = None,
                  n_bootstrap: int = 500, clusters: tuple[str, ...] = ("case", "expert"), conf_level: float = 0.95,
                  seed: int = 0) -> ArenaRanking:
    """The ranking with its position bias and tie rate, as the report shows them."""
    return ArenaRanking(
        ranking=bradley_terry(comparisons, tie_model=tie_model, reference=reference, position=True,
                              n_bootstrap=n_bootstrap, clusters=clusters, conf_level=conf_level, seed=seed),
        position_bias=position_bias(comparisons, conf_level),
        tie_rate=tie_rate(comparisons, n_bootstrap=n_bootstrap, clusters=clusters, conf_level=conf_level, seed=seed),
    )


def _fit_two_davidson(counts: np.ndarray, ref: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum likelihood of the Davidson model with a position effect for two items, many tables at once.

    ``counts``: [m x 4 x 3] weighted counts per ordered pair (0-0, 0-1, 1-0, 1-1) and outcome (left, right, tie).
    Returns theta [m x 3] = (log-strength of the item that is not ``ref``, tau, alpha), as :func:`_fit` orders it,
    and a mask of the tables where the maximum is interior (each side order has a left and a right win and there is
    a tie somewhere) and inside :func:`_fit`'s bounds; the other rows are to be fitted by :func:`_fit`.

    With the two side orders g (item 0 left; item 1 left) the model has one free difference d_g per order and the
    shared tau, so the score equations are: n_g (p_left - p_right) = left_g - right_g for each g and
    sum_g n_g p_tie = ties. For fixed nu = e^tau the first is a quadratic in s_g = 2 sinh(d_g / 2) (root with the
    sign of rho_g = (left_g - right_g) / n_g): s_g = rho_g (nu + sqrt(rho_g^2 nu^2 + 4 (1 - rho_g^2))) / (1 - rho_g^2);
    the second is then monotone in tau (the profile likelihood is concave), solved by bisection to the last bit.
    Finally d_g = 2 asinh(s_g / 2), alpha = (d_0 + d_1) / 2 and beta_0 - beta_1 = (d_0 - d_1) / 2.
    """
    lft, rgt, tie = (counts[:, 1:3, o] for o in range(3))  # [m x 2]: order g = 0 (item 0 left), 1 (item 1 left)
    n = lft + rgt + tie
    ties = tie.sum(axis=1)
    ok = (lft > 0).all(axis=1) & (rgt > 0).all(axis=1) & (ties > 0) & (counts[:, [0, 3]].sum(axis=(1, 2)) == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(ok[:, None], (lft - rgt) / n, 0.0)
    one_m = 1.0 - rho * rho

    def s_of(nu: np.ndarray) -> np.ndarray:
        return rho * (nu + np.sqrt(rho * rho * nu * nu + 4.0 * one_m)) / one_m

    lo, hi = np.full(len(counts), -20.0), np.full(len(counts), 20.0)
    for _ in range(200):  # bisection on tau: the interval halves to adjacent floating-point numbers
        mid = (lo + hi) / 2
        nu = np.exp(mid)[:, None]
        excess = (n * nu / (np.sqrt(s_of(nu) ** 2 + 4.0) + nu)).sum(axis=1) - ties  # expected - observed ties
        lo, hi = np.where(excess < 0, mid, lo), np.where(excess < 0, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(lo))):
            break
    tau = (lo + hi) / 2
    d = 2.0 * np.arcsinh(s_of(np.exp(tau)[:, None]) / 2.0)
    diff, alpha = (d[:, 0] - d[:, 1]) / 2, (d[:, 0] + d[:, 1]) / 2
    beta_other = diff if ref == 1 else -diff
    ok &= (np.abs(tau) < 20.0) & (np.abs(alpha) < 20.0) & (np.abs(beta_other) < _BOUND) & np.isfinite(d).all(axis=1)
    return np.column_stack([beta_other, tau, alpha]), ok
