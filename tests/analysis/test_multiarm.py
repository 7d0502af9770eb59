"""The multi-arm primary analysis (analysis.stats.multiarm; issue 20): each AI arm vs control at alpha / m, Holm
p-values beside it. Known values: an exact copy of the AI arm under another label must give exactly the two-arm
primary analysis at the Bonferroni level, twice; Holm against statsmodels and by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from analysis.stats.multiarm import _two_arm_tables, holm, multi_arm_primary
from analysis.stats.primary import HIERARCHY, primary_analysis
from tests.analysis.primary_sim import simulate


def _with_copied_arm(tables: dict[str, pd.DataFrame], label: str = "ai_copy") -> dict[str, pd.DataFrame]:
    """A three-arm table set: the two-arm one plus its AI arm again under ``label`` (own readers, own ratings)."""
    reads, ratings = tables["reads"], tables["ratings"]
    copy = reads[reads["arm"] == "ai_assisted"].assign(
        arm=label, reader=lambda d: "C" + d["reader"].astype(str), read_id=lambda d: "X" + d["read_id"].astype(str))
    rc = ratings.copy()
    for s in ("a", "b"):
        ai = rc[f"arm_{s}"] == "ai_assisted"
        rc.loc[ai, f"reader_{s}"] = "C" + rc.loc[ai, f"reader_{s}"].astype(str)
        rc.loc[ai, f"arm_{s}"] = label
    rc["rating_id"] = "X" + rc["rating_id"].astype(str)
    return {"reads": pd.concat([reads, copy], ignore_index=True),
            "ratings": pd.concat([ratings, rc], ignore_index=True)}


def test_copied_arm_gives_the_two_arm_analysis_at_the_bonferroni_level():
    two = simulate("paired_by_case", n_cases=40, n_readers=8, n_centers=2, quality_effect=0.5,
                   log_time_ratio=math.log(0.8), reader_sd=0.15, seed=5)
    three = _with_copied_arm(two)
    multi = multi_arm_primary(three, design="paired_by_case", ai_arms=["ai_assisted", "ai_copy"],
                              control="unassisted", majority_k=2)
    assert multi.arms == ["ai_assisted", "ai_copy"] and multi.control == "unassisted"
    ref = primary_analysis(two, design="paired_by_case", majority_k=2, assisted="ai_assisted",
                           control="unassisted", conf_level=0.975, alpha=0.025, subgroups=False,
                           rng=np.random.default_rng(0))
    for c in multi.contrasts:
        assert c.alpha == pytest.approx(0.025) and c.conf_level == pytest.approx(0.975)
        for ep in HIERARCHY:
            got, want = getattr(c.primary, ep), getattr(ref, ep)
            # the mixed models are fitted iteratively on frames whose rows differ in order, so the optimiser stops
            # a few ulps of its tolerance apart (1.4e-9 relative seen on a p value): equal to 1e-7
            assert got.estimate == pytest.approx(want.estimate, rel=1e-7, abs=1e-12)
            assert got.ci == pytest.approx(want.ci, rel=1e-7, abs=1e-12)
            assert got.p == pytest.approx(want.p, rel=1e-7, abs=1e-15)
            assert got.confirmatory == want.confirmatory
            # two identical p-values: Holm multiplies both by 2 (capped at 1)
            assert c.holm_p[ep] == pytest.approx(min(1.0, 2 * want.p))
    # the 97.5% CI is wider than the 95% one of the unadjusted two-arm analysis
    plain = primary_analysis(two, design="paired_by_case", majority_k=2, assisted="ai_assisted",
                             control="unassisted", subgroups=False)
    lo, hi = multi.contrasts[0].primary.quality.ci
    assert lo < plain.quality.ci[0] and hi > plain.quality.ci[1]
    assert multi.to_dict()["contrasts"][1]["arm"] == "ai_copy"


def test_two_arm_tables_keep_only_the_pair():
    reads = pd.DataFrame({"arm": ["u", "a", "b", "u"], "case_code": ["1", "1", "1", "2"]})
    ratings = pd.DataFrame({"arm_a": ["u", "a", "b", "a"], "arm_b": ["a", "b", "u", ""], "case_code": ["1"] * 4})
    t = _two_arm_tables({"reads": reads, "ratings": ratings}, "a", "u")
    assert list(t["reads"]["arm"]) == ["u", "a", "u"]
    assert t["ratings"][["arm_a", "arm_b"]].values.tolist() == [["u", "a"]]


def test_holm_matches_statsmodels_and_hand_values():
    p = [0.01, 0.04, 0.03, 0.2]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.2])  # 4*.01, max(3*.03, .04), max(2*.04, .09), .2
    assert holm([0.02, None, 0.5]) == [pytest.approx(0.04), None, pytest.approx(0.5)]
