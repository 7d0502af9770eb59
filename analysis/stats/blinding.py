"""Blinding indices: how well the experts could tell which report was written with AI assistance.

Input is a guess-by-assignment table (docs/design.md section 5): rows are the guesses (arm 1, arm 2, don't know),
columns the true assignment (arm 1, arm 2).

- **Bang's index** (Bang, Ni & Davis 2004, Control Clin Trials 25:143), one per assignment column j:
  ``BI_j = (n_jj - n_kj) / n_.j`` = (correct - incorrect guesses) / everyone asked, don't-knows included.
  -1 = all guess the other arm, 0 = random guessing (or all don't know), 1 = complete unblinding.
  Variance from the multinomial: ``(p_c (1 - p_c) + p_w (1 - p_w) + 2 p_c p_w) / n_.j`` (p_c, p_w the shares of
  correct and wrong guesses); Wald interval.
- **James's index** (James, Bloch, Lee, Kraemer & Fuller 1996, Stat Med 15:1421), one for the trial:
  ``BI = (1 + P_dk + (1 - P_dk) kappa_d) / 2`` with ``kappa_d = (P_od - P_ed) / P_ed`` the weighted disagreement
  among those who guessed (weights 0 correct, 1/2 wrong), P_dk the share of don't-knows; 0 = complete unblinding,
  1/2 = random guessing, 1 = complete blinding. Variance by the paper's delta method; Wald interval. All don't-know
  gives 1 with standard error 0.

How the rating's question maps onto the table (:func:`blinding_from_ratings`): the A/B order of a pair is drawn per
task, so which letter holds the AI-assisted report is the randomised "assignment" and the expert's answer (A, B,
don't know) is the guess. One answer names both reports of the pair, so the index for the assisted arm and the
control arm are the same number: (pairs guessed right - pairs guessed wrong) / pairs asked. A single report
(case-randomised designs) is judged alone (AI-assisted, not, don't know), so its arm is the assignment and the
arms' indices differ.

Checked against the disulfiram trial's guesses ([[48, 22], [4, 30], [330, 319]]: James 0.896, Bang 0.115 and
0.022) in tests/analysis/test_blinding.py.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._result import Section, optional

DONT_KNOW = "dont_know"
# James et al. 1996: weight 0 for a correct guess, 1/2 for a wrong one (don't-knows are handled separately).
JAMES_WEIGHTS = np.array([[0.0, 0.5], [0.5, 0.0]])


@dataclass(frozen=True)
class BlindingIndex:
    """One blinding index: ``estimate`` with its standard error and Wald ``ci`` at ``conf_level``; ``n`` the
    answers that went in; ``counts`` the correct / wrong / don't-know answers (Bang) or the table (James)."""

    method: str
    estimate: float | None
    se: float | None
    ci: tuple[float | None, float | None]
    n: int
    conf_level: float = 0.95
    counts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BlindingResult:
    """Both indices for one guess-by-assignment ``table`` (rows: guess arm 1, guess arm 2, don't know; columns:
    assigned arm 1, arm 2). ``bang`` is keyed by the arms' names, in column order."""

    arms: tuple[str, str]
    table: list[list[int]]
    bang: dict[str, BlindingIndex]
    james: BlindingIndex
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"arms": list(self.arms), "table": self.table, "notes": list(self.notes),
                "bang": {k: v.to_dict() for k, v in self.bang.items()}, "james": self.james.to_dict()}


def _wald(est: float, se: float, conf_level: float) -> tuple[float, float]:
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    return (est - z * se, est + z * se)


def bang_index(correct: int, wrong: int, dont_know: int, conf_level: float = 0.95) -> BlindingIndex:
    """Bang's index of one arm from its correct, wrong and don't-know answers."""
    n = int(correct + wrong + dont_know)
    counts = {"correct": int(correct), "wrong": int(wrong), "dont_know": int(dont_know)}
    if n == 0:
        return BlindingIndex("Bang blinding index", None, None, (None, None), 0, conf_level, counts)
    pc, pw = correct / n, wrong / n
    est = pc - pw
    se = math.sqrt((pc * (1 - pc) + pw * (1 - pw) + 2 * pc * pw) / n)
    return BlindingIndex("Bang blinding index", est, se, _wald(est, se, conf_level), n, conf_level, counts)


def james_index(table: Sequence[Sequence[int]], conf_level: float = 0.95) -> BlindingIndex:
    """James's index of a 3 x 2 guess-by-assignment table (rows guess 1, guess 2, don't know)."""
    x = np.asarray(table, dtype=float)
    if x.shape != (3, 2) or (x < 0).any():
        raise ValueError("the table must be 3 x 2 non-negative counts: guesses (arm 1, arm 2, don't know) by arm")
    n = float(x.sum())
    counts = {"table": x.astype(int).tolist()}
    if n == 0:
        return BlindingIndex("James blinding index", None, None, (None, None), 0, conf_level, counts)
    p = x / n
    p_dk = float(p[2].sum())
    if p_dk >= 1.0:  # nobody guessed: complete blinding by definition
        return BlindingIndex("James blinding index", 1.0, 0.0, (1.0, 1.0), int(n), conf_level, counts)
    g = p[:2]  # the guesses
    row = g.sum(axis=1)  # share guessing arm i
    col = g.sum(axis=0)  # share of guessers assigned to arm j
    w = JAMES_WEIGHTS
    expected = float((w * np.outer(row, col)).sum())  # sum_ij w_ij p_i. p_.j (among guessers, unscaled)
    observed = float((w * g).sum())
    q = 1.0 - p_dk
    if expected == 0:
        return BlindingIndex("James blinding index", None, None, (None, None), int(n), conf_level, counts)
    kappa = (observed / q - expected / q**2) / (expected / q**2)
    est = (1 + p_dk + q * kappa) / 2
    # Delta-method variance (James et al. 1996, appendix).
    v1 = 0.0
    for i in range(2):
        for j in range(2):
            extra = sum(w[r, j] * row[r] + w[i, r] * col[r] for r in range(2))
            v1 += g[i, j] * q**2 * (q * w[i, j] - (1 + kappa) * extra) ** 2
    v1 /= 4 * expected**2
    v2 = p_dk * q - q * (1 + kappa) * (p_dk + q * (1 + kappa) / 4)
    var = (v1 + v2) / n
    se = math.sqrt(var) if var > 0 else 0.0
    return BlindingIndex("James blinding index", est, se, _wald(est, se, conf_level), int(n), conf_level, counts)


def blinding_indices(table: Sequence[Sequence[int]], arms: tuple[str, str] = ("arm 1", "arm 2"),
                     conf_level: float = 0.95) -> BlindingResult:
    """Bang's index per arm and James's index of a 3 x 2 guess-by-assignment table (see the module docstring)."""
    x = np.asarray(table, dtype=int)
    if x.shape != (3, 2) or (x < 0).any():
        raise ValueError("the table must be 3 x 2 non-negative counts: guesses (arm 1, arm 2, don't know) by arm")
    bang = {arms[j]: bang_index(int(x[j, j]), int(x[1 - j, j]), int(x[2, j]), conf_level) for j in range(2)}
    return BlindingResult(tuple(arms), x.tolist(), bang, james_index(x, conf_level))


@dataclass(frozen=True)
class TrialBlinding(Section):
    """Blinding of a trial's experts (:func:`blinding_from_ratings`): ``n`` answers; ``kind`` 'pairs' or 'single
    reports'; Bang's index ``by_arm`` (keyed by arm label; pairs also ``by_position``, keyed by where the assisted
    report was shown), James's index, the guess-by-assignment ``table`` (rows, columns, counts) and ``notes``.
    With no answers only ``n`` = 0 and ``note`` (why)."""

    n: int
    note: str | None = optional()
    kind: str | None = optional()
    by_arm: dict[str, BlindingIndex] | None = optional()
    by_position: dict[str, BlindingIndex] | None = optional()
    james: BlindingIndex | None = optional()
    table: dict[str, Any] | None = optional()
    notes: list[str] | None = optional()


def blinding_from_ratings(ratings: pd.DataFrame, assisted: Any, control: Any,
                          conf_level: float = 0.95) -> TrialBlinding:
    """Blinding of submitted ratings that answered the AI-assistance question.

    ``ratings`` has ``arm_a``, ``arm_b`` (empty for a single report) and ``blinding_guess`` (pairs: A, B,
    dont_know; single reports: A = AI-assisted, not_a = not, dont_know; empty when not asked). Pairs, when there
    are any, are analysed as described in the module docstring (the assignment is the letter showing the
    ``assisted`` arm's report); otherwise single reports, whose assignment is their own arm, so Bang's index differs
    by arm. Returns a :class:`TrialBlinding`.
    """
    need = {"arm_a", "arm_b", "blinding_guess"}
    if ratings.empty or not need <= set(ratings.columns):
        return TrialBlinding(n=0, note="no blinding answers (the trial did not ask, or the export withholds them "
                                       "before lock)")
    r = ratings[list(need)].astype("string").fillna("")
    both = [str(assisted), str(control)]
    answered = r[(r["blinding_guess"] != "") & r["arm_a"].isin(both)]
    pairs = answered[answered["arm_b"].isin(both) & (answered["arm_a"] != answered["arm_b"])]
    if not pairs.empty:
        return _from_pairs(pairs, str(assisted), str(control), conf_level)
    singles = answered[answered["arm_b"] == ""]
    if not singles.empty:
        return _from_singles(singles, str(assisted), str(control), conf_level)
    return TrialBlinding(n=0, note="no blinding answers for reports of the assisted and control arms")


def _from_pairs(pairs: pd.DataFrame, assisted: str, control: str, conf_level: float) -> TrialBlinding:
    ai_in_a = pairs["arm_a"] == assisted
    guess = pairs["blinding_guess"]
    table = [[int(((guess == g) & ai_in_a).sum()), int(((guess == g) & ~ai_in_a).sum())]
             for g in ("A", "B", DONT_KNOW)]
    by_position = blinding_indices(table, arms=("assisted shown as A", "assisted shown as B"), conf_level=conf_level)
    overall = bang_index(table[0][0] + table[1][1], table[0][1] + table[1][0], table[2][0] + table[2][1], conf_level)
    return TrialBlinding(
        n=int(len(pairs)), kind="pairs",
        by_arm={assisted: overall, control: overall},
        by_position=dict(by_position.bang),
        james=by_position.james,
        table={"rows": ["guess A", "guess B", "don't know"],
               "columns": ["assisted shown as A", "assisted shown as B"], "counts": table},
        notes=["Each answer names both reports of a pair, so Bang's index is the same for both arms: "
               "(pairs guessed right - pairs guessed wrong) / pairs asked. " + SCALES],
    )


def _from_singles(singles: pd.DataFrame, assisted: str, control: str, conf_level: float) -> TrialBlinding:
    arm, guess = singles["arm_a"], singles["blinding_guess"]
    table = [[int(((guess == g) & (arm == a)).sum()) for a in (assisted, control)] for g in ("A", "not_a", DONT_KNOW)]
    res = blinding_indices(table, arms=(assisted, control), conf_level=conf_level)
    return TrialBlinding(
        n=int(len(singles)), kind="single reports",
        by_arm=dict(res.bang),
        james=res.james,
        table={"rows": ["guess assisted", "guess not assisted", "don't know"], "columns": [assisted, control],
               "counts": table},
        notes=["Each report was judged alone: Bang's index per arm is (right - wrong) / reports of that arm. "
               + SCALES],
    )


SCALES = ("Bang: 0 is random guessing, 1 complete unblinding, -1 all guessing the other arm. James: 1 complete "
          "blinding, 0.5 random guessing, 0 complete unblinding.")
