"""Bradley-Terry strengths of arms/models from pairwise preferences.

Fitted as a binomial GLM with statsmodels (no maintained Bradley-Terry package is installed): for a comparison of i
against j the linear predictor is log(s_i) - log(s_j); the reference item's log-strength is fixed at 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from ._result import UNSET, StatResult, empty_result


@dataclass
class BradleyTerryResult(StatResult):
    """Bradley-Terry fit: the ``reference`` item, every item's log-strength, SE, CI, strength and probability of
    beating the reference (``items``), the (half-)wins per item, ``n_ties`` and whether the GLM ``converged``."""

    reference: str = UNSET
    items: list[Any] = UNSET
    wins: dict[str, float] = UNSET
    n_ties: int = UNSET
    converged: bool = UNSET


def bradley_terry(
    comparisons: pd.DataFrame,
    item_a: str = "item_a",
    item_b: str = "item_b",
    winner: str = "winner",
    reference: Any | None = None,
    ties: Literal["half", "drop"] = "half",
    conf_level: float = 0.95,
) -> BradleyTerryResult:
    """Bradley-Terry model from rows (item_a, item_b, winner) where winner is the item_a value, the item_b value,
    or anything else for a tie (ties count half a win to each side with ``ties='half'``, or are dropped).

    Estimate/CI/p refer to the first non-reference item's log-strength against the reference; ``items``
    lists every item's log-strength, SE, CI, strength exp(log-strength) and the probability it beats the
    reference, exp(b) / (1 + exp(b)).
    """
    method = f"Bradley-Terry model (binomial GLM, ties {ties})"
    if comparisons is None or len(comparisons) == 0:
        return empty_result(method, "no comparisons", BradleyTerryResult, items=[])
    d = comparisons[[item_a, item_b, winner]].dropna(subset=[item_a, item_b]).copy()
    d = d[d[item_a] != d[item_b]]
    items = sorted(set(d[item_a]) | set(d[item_b]), key=str)
    if len(items) < 2 or len(d) == 0:
        return empty_result(method, "need comparisons between >= 2 items", BradleyTerryResult, n=len(d),
                            items=[str(i) for i in items])
    if reference is None:
        reference = items[0]
    a_win = (d[winner] == d[item_a]).astype(float)
    b_win = (d[winner] == d[item_b]).astype(float)
    tie = 1.0 - a_win - b_win
    if ties == "drop":
        keep = tie == 0
        d, a_win, b_win, tie = d[keep], a_win[keep], b_win[keep], tie[keep]
    else:
        a_win, b_win = a_win + tie / 2, b_win + tie / 2
    if len(d) == 0:
        return empty_result(method, "no decisive comparisons", BradleyTerryResult, n=0)
    others = [i for i in items if i != reference]
    x = np.zeros((len(d), len(others)))
    col = {it: k for k, it in enumerate(others)}
    for r, (ia, ib) in enumerate(zip(d[item_a], d[item_b], strict=True)):
        if ia in col:
            x[r, col[ia]] += 1
        if ib in col:
            x[r, col[ib]] -= 1
    endog = np.column_stack([a_win.to_numpy(), b_win.to_numpy()])
    fit = sm.GLM(endog, x, family=sm.families.Binomial()).fit()
    zq = stats.norm.ppf(0.5 + conf_level / 2)
    rows = [{"item": str(reference), "log_strength": 0.0, "se": 0.0, "ci": [0.0, 0.0], "strength": 1.0,
             "p_beats_reference": 0.5, "reference": True}]
    for it in others:
        b, se = float(fit.params[col[it]]), float(fit.bse[col[it]])
        rows.append({"item": str(it), "log_strength": b, "se": se, "ci": [b - zq * se, b + zq * se],
                     "strength": float(np.exp(b)), "p_beats_reference": float(1 / (1 + np.exp(-b))),
                     "p": float(2 * stats.norm.sf(abs(b / se))) if se > 0 else None, "reference": False})
    head = rows[1]
    wins = {str(it): float(a_win[d[item_a] == it].sum() + b_win[d[item_b] == it].sum()) for it in items}
    return BradleyTerryResult(method=method, estimate=head["log_strength"], ci=tuple(head["ci"]),
                              statistic=head["log_strength"] / head["se"] if head["se"] > 0 else None,
                              p=head.get("p"), n=len(d), conf_level=conf_level, reference=str(reference), items=rows,
                              wins=wins, n_ties=int(tie.sum()) if ties == "half" else 0,
                              converged=bool(fit.converged), raw=fit)
