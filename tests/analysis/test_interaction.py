"""Human-AI interaction measures (analysis/stats/interaction.py) against values computed by hand from a small table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stats.interaction import (
    automation_bias,
    interaction_analysis,
    learning_curve,
    override_rates,
    per_read_changes,
    read_accuracy,
)

E = np.nan
# Two findings a, b. Reads r1-r3 showed the AI draft (arm ai), r4-r5 did not (arm un).
READS = pd.DataFrame({
    "read_id": ["r1", "r2", "r3", "r4", "r5"],
    "reader": ["R1", "R2", "R1", "R3", "R3"],
    "case_code": ["c1", "c1", "c2", "c1", "c2"],
    "arm": ["ai", "ai", "ai", "un", "un"],
    "reader_position": [1, 2, 2, 1, 2],
    "active_seconds": [100.0, 50.0, 80.0, 120.0, 90.0],
    "draft_edit_distance": [0.2, 0.0, 0.5, E, E],
    "draft_a": [1, 1, 1, E, E], "draft_b": [1, 1, 0, E, E],
    "finding_a": [1, 1, 0, 0, 0], "finding_b": [0, 1, 1, 0, 0],
})
CASES = pd.DataFrame({"case_code": ["c1", "c2"], "ref_a": [1, 0], "ref_b": [0, 0]})


def test_per_read_changes_by_hand():
    c = per_read_changes(READS).set_index("read_id")
    assert list(c.index) == ["r1", "r2", "r3"]  # unassisted reads showed no draft
    # r1: AI a+, b+; reader a+, b-  -> kept a, removed b.  r3: AI a+, b-; reader a-, b+ -> removed a, added b.
    assert c.loc["r1", ["suggested", "kept", "removed", "added", "unchanged", "n_calls"]].tolist() == [2, 1, 1, 0, 1, 2]
    assert c.loc["r2", ["suggested", "kept", "removed", "added", "unchanged", "n_calls"]].tolist() == [2, 2, 0, 0, 2, 2]
    assert c.loc["r3", ["suggested", "kept", "removed", "added", "unchanged", "n_calls"]].tolist() == [1, 0, 1, 1, 0, 2]
    assert c["text_edited"].tolist() == [1.0, 0.0, 1.0]


def test_override_rates_by_hand():
    o = {x.finding: x for x in override_rates(READS)}
    # a: the AI said present in r1, r2, r3; the reader said absent in r3.  It never said absent.
    assert (o["a"].ai_present_reader_absent.k, o["a"].ai_present_reader_absent.n) == (1, 3)
    assert o["a"].ai_absent_reader_present.n == 0 and o["a"].ai_absent_reader_present.rate is None
    # b: present in r1, r2 (r1 overrode it); absent in r3 (r3 marked it present).
    assert o["b"].ai_present_reader_absent.rate == 0.5 and o["b"].ai_absent_reader_present.rate == 1.0
    lo, hi = o["a"].ai_present_reader_absent.ci
    assert lo < 1 / 3 < hi


def test_automation_bias_by_hand():
    # AI calls per cell: (c1,a)=1 ref 1 right; (c1,b)=1 ref 0 wrong; (c2,a)=1 ref 0 wrong; (c2,b)=0 ref 0 right.
    cells = {x.ai_correct: x for x in automation_bias(READS, CASES, "ai", "un")}
    right, wrong = cells[True], cells[False]
    # AI right: assisted r1 a ok, r2 a ok, r3 b wrong -> 2/3; unassisted r4 a wrong, r5 b ok -> 1/2.
    assert (right.assisted.k, right.assisted.n, right.unassisted.k, right.unassisted.n) == (2, 3, 1, 2)
    assert right.difference == pytest.approx(2 / 3 - 1 / 2)
    # AI wrong: assisted r1 b ok, r2 b wrong, r3 a ok -> 2/3; unassisted r4 b ok, r5 a ok -> 2/2.
    assert (wrong.assisted.k, wrong.assisted.n, wrong.unassisted.k, wrong.unassisted.n) == (2, 3, 2, 2)
    assert wrong.difference == pytest.approx(2 / 3 - 1)


def test_read_accuracy_by_hand():
    assert read_accuracy(READS, CASES).tolist() == [1.0, 0.5, 0.5, 0.5, 1.0]


def test_learning_curve_recovers_a_known_within_reader_slope():
    rows = []
    for reader, base in (("R1", 1.0), ("R2", 3.0), ("R3", 2.0)):
        for pos in range(1, 11):
            rows.append({"arm": "ai", "reader": reader, "reader_position": pos, "y": base + 0.1 * pos})
    reads = pd.DataFrame(rows)
    lc = learning_curve(reads, reads["y"], "y", n_bins=5)
    assert lc.slopes["ai"]["per_10_reads"] == pytest.approx(1.0) and lc.slopes["ai"]["n_reads"] == 30
    # Bins of width 2: positions 1-2 have mean 2.0 + 0.15 over the three readers, 9-10 have 2.0 + 0.95.
    assert [(b["from"], b["to"], b["n"]) for b in lc.bins][:2] == [(1.0, 2.0, 6), (3.0, 4.0, 6)]
    assert lc.bins[0]["mean"] == pytest.approx(2.15) and lc.bins[-1]["mean"] == pytest.approx(2.95)


def test_interaction_analysis_puts_it_together():
    r = interaction_analysis(READS, CASES, "ai", "un")
    assert r.n_reads_with_draft == 3
    assert r.totals == {"suggested": 5, "kept": 3, "removed": 2, "added": 1, "unchanged": 3, "n_calls": 6}
    assert r.per_read_means["suggested"] == pytest.approx(5 / 3)
    assert r.per_read_means["edit_distance"] == pytest.approx(0.7 / 3)
    assert r.per_read_means["text_edited"] == pytest.approx(2 / 3)
    assert {c.outcome for c in r.learning_curves} == {"accuracy", "log active seconds"}
    d = r.to_dict()
    assert d["automation_bias"][0]["assisted"]["k"] == 2 and d["overrides"][0]["finding"] == "a"
    empty = interaction_analysis(READS.drop(columns=["draft_a", "draft_b"]), CASES, "ai", "un")
    assert empty.n_reads_with_draft == 0 and empty.automation_bias == [] and "withholds" in empty.notes[-1]


def test_a_withheld_draft_is_not_counted_as_shown():
    """``draft_shown`` 0 (an out-of-distribution draft withheld from the reader): its calls were never seen."""
    reads = READS.assign(draft_shown=[1, 0, 1, E, E])
    r = interaction_analysis(reads, CASES, "ai", "un")
    assert r.n_reads_with_draft == 2  # r2 withheld
    assert r.totals == {"suggested": 3, "kept": 1, "removed": 2, "added": 1, "unchanged": 1, "n_calls": 4}
    assert interaction_analysis(READS.assign(draft_shown=1), CASES, "ai", "un").totals["suggested"] == 5
