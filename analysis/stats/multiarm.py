"""The declared primary analysis of a trial with several AI arms (issue 20; docs/primary_analysis.md, "Three or
more arms"): each AI arm against the control arm (unassisted), each contrast the two-arm primary analysis
(:func:`.primary.primary_analysis`: quality, reading time, preference in a fixed sequence) on the reads and ratings
of those two arms, at two-sided level alpha / m (Bonferroni over the m AI arms), CIs at 1 - alpha / m.

Why this rule: within one contrast the fixed sequence keeps the family-wise error at its level, and Bonferroni over
the m contrasts keeps the whole trial's family-wise error at alpha whatever the correlation between contrasts (they
share the control reads). Holm-adjusted p-values per endpoint are reported beside it, descriptive only.

Comparisons between the AI arms themselves are not part of the primary analysis: the arena ranking
(:mod:`.bradley_terry`) ranks all arms from the experts' judgements, descriptive.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from ._result import jsonable
from .primary import HIERARCHY, PrimaryBlock, primary_analysis

RULE = ("Bonferroni over the AI arms: each AI arm vs control at two-sided alpha / m with its own fixed sequence "
        "(quality, reading time, preference); CIs at 1 - alpha / m")


@dataclass
class ArmContrast:
    """One AI arm against the control: the two-arm primary block at ``alpha`` (= overall alpha / m)."""

    arm: str
    control: str
    alpha: float
    conf_level: float
    primary: PrimaryBlock
    holm_p: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass
class MultiArmPrimary:
    control: str
    arms: list[str]
    alpha: float
    rule: str
    contrasts: list[ArmContrast]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # Field by field through each part's to_dict, not dataclasses.asdict (see PrimaryBlock.to_dict).
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count towards m)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and np.isfinite(p)]
    out: list[float | None] = [None] * len(pvalues)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def _two_arm_tables(tables: Mapping[str, pd.DataFrame], arm: str, control: str) -> dict[str, pd.DataFrame]:
    """The reads of the two arms and the ratings that compare exactly them (a rating of another pair, or of one
    report, is left out)."""
    keep = {arm, control}
    out = dict(tables)
    reads = tables.get("reads", pd.DataFrame())
    if "arm" in reads:
        out["reads"] = reads[reads["arm"].astype(str).isin(keep)].reset_index(drop=True)
    ratings = tables.get("ratings", pd.DataFrame())
    if {"arm_a", "arm_b"} <= set(ratings.columns):
        a, b = ratings["arm_a"].astype(str), ratings["arm_b"].astype(str)
        out["ratings"] = ratings[a.isin(keep) & b.isin(keep) & (a != b)].reset_index(drop=True)
    return out


def multi_arm_primary(tables: Mapping[str, pd.DataFrame], *, design: str, ai_arms: Sequence[str], control: str,
                      majority_k: int | None = None, alpha: float = 0.05, subgroups: bool = False,
                      seed: int = 20250101) -> MultiArmPrimary:
    """Each AI arm in ``ai_arms`` against ``control`` (labels as in the tables), Bonferroni over the arms."""
    arms = [str(a) for a in ai_arms if str(a) != str(control)]
    m = max(1, len(arms))
    level = alpha / m
    contrasts = []
    for arm in arms:
        block = primary_analysis(_two_arm_tables(tables, arm, str(control)), design=design, majority_k=majority_k,
                                 assisted=arm, control=str(control), rng=np.random.default_rng(seed),
                                 conf_level=1 - level, alpha=level, subgroups=subgroups)
        contrasts.append(ArmContrast(arm=arm, control=str(control), alpha=level, conf_level=1 - level, primary=block))
    for endpoint in HIERARCHY:
        adjusted = holm([getattr(c.primary, endpoint).p for c in contrasts])
        for c, p in zip(contrasts, adjusted, strict=True):
            c.holm_p[endpoint] = p
    notes = [] if len(arms) >= 2 else ["fewer than two AI arms: the two-arm primary analysis applies"]
    return MultiArmPrimary(control=str(control), arms=arms, alpha=alpha, rule=RULE, contrasts=contrasts, notes=notes)
