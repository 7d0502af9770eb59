"""Blinding indices (analysis/stats/blinding.py) against a worked example and hand calculations.

The worked example is the disulfiram trial's participants' guesses (James et al. 1996, Stat Med 15:1421; analysed
again by Bang et al. 2004, Control Clin Trials 25:143): rows guess disulfiram / placebo / don't know, columns
assigned disulfiram / placebo, [[48, 22], [4, 30], [330, 319]]. The expected values to 3 decimals (James 0.896,
SE 0.011, CI 0.875-0.918; Bang 0.115 (SE 0.018) and 0.022 (SE 0.019)) are those the R package BI (Schwartz and
Mercaldo, an implementation of both papers) reports for this table; Bang's are also worked out by hand below.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.stats.blinding import bang_index, blinding_from_ratings, blinding_indices, james_index

DISULFIRAM = [[48, 22], [4, 30], [330, 319]]


def test_disulfiram_worked_example():
    res = blinding_indices(DISULFIRAM, arms=("disulfiram", "placebo"))
    j = res.james
    assert (round(j.estimate, 3), round(j.se, 3)) == (0.896, 0.011)
    assert (round(j.ci[0], 3), round(j.ci[1], 3)) == (0.875, 0.918)
    assert j.n == 753
    d, p = res.bang["disulfiram"], res.bang["placebo"]
    assert (round(d.estimate, 3), round(d.se, 3), round(d.ci[0], 3), round(d.ci[1], 3)) == (0.115, 0.018, 0.080, 0.150)
    assert (round(p.estimate, 3), round(p.se, 3), round(p.ci[0], 3), round(p.ci[1], 3)) == (0.022, 0.019, -0.016, 0.060)


def test_bang_by_hand():
    # Disulfiram arm: 48 right, 4 wrong, 330 don't know of 382.
    pc, pw, n = 48 / 382, 4 / 382, 382
    b = bang_index(48, 4, 330)
    assert b.estimate == pytest.approx((48 - 4) / 382)
    assert b.se == pytest.approx(math.sqrt((pc * (1 - pc) + pw * (1 - pw) + 2 * pc * pw) / n))
    assert b.ci == pytest.approx((b.estimate - 1.959964 * b.se, b.estimate + 1.959964 * b.se), abs=1e-6)
    assert b.counts == {"correct": 48, "wrong": 4, "dont_know": 330}


def test_james_by_hand_on_a_small_table():
    # 2 x 2 guesses, no don't-know: p = [[.4, .1], [.1, .4]]; P_od = .5 * .2 = .1;
    # P_ed = .5 * (.5*.5 + .5*.5) = .25; kappa_d = (.1 - .25) / .25 = -.6; BI = (1 + 0 + 1 * (-.6)) / 2 = .2.
    j = james_index([[40, 10], [10, 40], [0, 0]])
    assert j.estimate == pytest.approx(0.2)
    assert 0 < j.se < 0.1


@pytest.mark.parametrize("table, james, bang", [
    ([[0, 0], [0, 0], [10, 12]], 1.0, (0.0, 0.0)),        # nobody guesses: complete blinding
    ([[25, 0], [0, 25], [0, 0]], 0.0, (1.0, 1.0)),        # everyone right: complete unblinding
    ([[10, 10], [10, 10], [0, 0]], 0.5, (0.0, 0.0)),      # coin tossing
    ([[0, 20], [20, 0], [0, 0]], 1.0, (-1.0, -1.0)),      # everyone wrong (James: as blind as can be measured)
])
def test_landmarks(table, james, bang):
    res = blinding_indices(table)
    assert res.james.estimate == pytest.approx(james)
    assert (res.bang["arm 1"].estimate, res.bang["arm 2"].estimate) == pytest.approx(bang)


def test_rejects_bad_tables():
    with pytest.raises(ValueError):
        blinding_indices([[1, 2], [3, 4]])
    with pytest.raises(ValueError):
        james_index([[1, -2], [3, 4], [0, 0]])


def test_from_ratings_maps_letters_to_the_assisted_report():
    rng = np.random.default_rng(1)
    rows = []
    counts = {"right": 0, "wrong": 0, "dk": 0}
    for _ in range(300):
        ai_in_a = bool(rng.random() < 0.5)
        kind = rng.choice(["right", "wrong", "dk"], p=[0.5, 0.2, 0.3])
        counts[str(kind)] += 1
        letter = {"right": "A" if ai_in_a else "B", "wrong": "B" if ai_in_a else "A", "dk": "dont_know"}[str(kind)]
        rows.append({"arm_a": "ai" if ai_in_a else "std", "arm_b": "std" if ai_in_a else "ai",
                     "blinding_guess": letter, "preference": "A"})
    rows.append({"arm_a": "ai", "arm_b": "", "blinding_guess": "", "preference": ""})  # a single report: skipped
    res = blinding_from_ratings(pd.DataFrame(rows), assisted="ai", control="std")
    assert res.n == 300
    expected = (counts["right"] - counts["wrong"]) / 300
    assert res.by_arm["ai"].estimate == pytest.approx(expected)
    assert res.by_arm["std"].estimate == pytest.approx(expected)
    t = res.table["counts"]
    assert t[0][0] + t[1][1] == counts["right"] and t[0][1] + t[1][0] == counts["wrong"]
    assert 0 < res.james.estimate < 0.5  # more right than wrong: less blind than coin tossing


def test_from_ratings_without_answers_says_so():
    res = blinding_from_ratings(pd.DataFrame({"arm_a": ["X"], "arm_b": ["Y"], "preference": ["A"]}), "X", "Y")
    assert res.n == 0 and "withholds" in res.note


def test_from_ratings_single_reports_give_one_index_per_arm():
    # Assisted reports: 30 judged AI-assisted (right), 10 not (wrong), 20 don't know.
    # Control reports: 12 judged AI-assisted (wrong), 18 not (right), 30 don't know.
    rows = ([{"arm_a": "ai", "blinding_guess": g} for g in ["A"] * 30 + ["not_a"] * 10 + ["dont_know"] * 20]
            + [{"arm_a": "std", "blinding_guess": g} for g in ["A"] * 12 + ["not_a"] * 18 + ["dont_know"] * 30])
    df = pd.DataFrame(rows).assign(arm_b="")
    res = blinding_from_ratings(df, assisted="ai", control="std")
    assert res.kind == "single reports" and res.n == 120
    assert res.by_arm["ai"].estimate == pytest.approx((30 - 10) / 60)
    assert res.by_arm["std"].estimate == pytest.approx((18 - 12) / 60)
    assert res.table["counts"] == [[30, 12], [10, 18], [20, 30]]
    assert res.james.estimate == pytest.approx(james_index([[30, 12], [10, 18], [20, 30]]).estimate)
