"""Linear mixed models with scalar random intercepts (crossed or nested), fitted by REML the lme4 way.

Interface only in this commit; the engine follows.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Contrast:
    """One linear contrast ``L @ beta`` of the fixed effects with a t test on Satterthwaite (or KR) df."""

    estimate: float
    se: float
    df: float
    t: float
    p: float
    ci_low: float
    ci_high: float
    conf_level: float


@dataclass(frozen=True)
class LmmFit:
    """A fitted linear mixed model (see :func:`fit_lmm`)."""

    names: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    df: np.ndarray
    t: np.ndarray
    p: np.ndarray
    vcov: np.ndarray
    variance_components: dict[str, float]
    reml_criterion: float
    converged: bool
    boundary: bool
    message: str
    n_obs: int
    n_levels: dict[str, int]
    engine: str
    df_method: str

    def contrast(self, L: np.ndarray, conf_level: float = 0.95) -> Contrast:  # noqa: N803
        raise NotImplementedError

    def coef_test(self, name: str, conf_level: float = 0.95) -> Contrast:
        raise NotImplementedError


def fit_lmm(
    y: np.ndarray,
    X: pd.DataFrame,  # noqa: N803
    groups: Mapping[str, np.ndarray],
    *,
    reml: bool = True,
    df_method: str = "satterthwaite",
) -> LmmFit:
    """Fit ``y ~ X + (1|g1) + (1|g2) + ...`` by REML (or ML)."""
    raise NotImplementedError
