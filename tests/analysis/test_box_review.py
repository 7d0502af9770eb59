"""The readers' accept/reject decisions on the AI boxes (analysis/stats/box_review.py), against counts worked out
by hand below."""
from __future__ import annotations

import pandas as pd
import pytest
from django.template import Context

from analysis.report import _engine
from analysis.stats.box_review import box_review_summary

CASES = pd.DataFrame({"case_code": ["C1", "C2", "C3"],
                      "ref_pleural_effusion": [1, 0, None], "ref_cardiomegaly": [0, 1, 1]})
BOXES = pd.DataFrame([
    # read, case, finding, decision, submitted
    ("r1", "C1", "pleural_effusion", "accepted", 1),   # present: an accepted box on a true finding
    ("r1", "C1", "cardiomegaly", "rejected", 1),       # absent: rightly rejected
    ("r2", "C2", "pleural_effusion", "rejected", 1),   # absent
    ("r2", "C2", "pleural_effusion", "accepted", 1),   # absent: an accepted false box
    ("r3", "C3", "pleural_effusion", "accepted", 1),   # no reference for C3's effusion
    ("r3", "C3", "cardiomegaly", "", 1),               # undecided
    ("r3", "C3", "", "accepted", 1),                   # a box naming no finding
    ("r4", "C1", "pleural_effusion", "rejected", 0),   # read not submitted: left out
], columns=["read_id", "case_code", "finding", "decision", "submitted"])


def _by(result, finding):
    return next(f for f in result.findings if f.finding == finding)


def test_acceptance_and_reference_of_accepted_and_rejected_boxes_match_the_hand_counts():
    res = box_review_summary(BOXES, CASES)
    assert res.n_reads == 3
    assert [f.finding for f in res.findings] == ["", "cardiomegaly", "pleural_effusion"]

    pe = _by(res, "pleural_effusion")
    assert (pe.shown, pe.accepted, pe.rejected, pe.undecided) == (4, 3, 1, 0)
    assert (pe.acceptance.k, pe.acceptance.n, pe.acceptance.rate) == (3, 4, 0.75)
    assert pe.acceptance.ci == pytest.approx((0.19412045, 0.99369054), abs=1e-7)  # Clopper-Pearson 3/4
    assert (pe.accepted_present.k, pe.accepted_present.n) == (1, 2)  # C1 present, C2 absent; C3 unknown
    assert (pe.rejected_present.k, pe.rejected_present.n, pe.rejected_present.rate) == (0, 1, 0.0)

    cm = _by(res, "cardiomegaly")
    assert (cm.shown, cm.accepted, cm.rejected, cm.undecided) == (2, 0, 1, 1)
    assert (cm.acceptance.k, cm.acceptance.n) == (0, 1)
    assert (cm.accepted_present.n, cm.accepted_present.rate, cm.accepted_present.ci) == (0, None, None)
    assert (cm.rejected_present.k, cm.rejected_present.n) == (0, 1)

    none = _by(res, "")
    assert (none.shown, none.accepted, none.acceptance.rate, none.accepted_present.n) == (1, 1, 1.0, 0)

    o = res.overall
    assert (o.finding, o.shown, o.accepted, o.rejected, o.undecided) == ("all", 7, 4, 2, 1)
    assert (o.acceptance.k, o.acceptance.n) == (4, 6)
    assert o.acceptance.ci == pytest.approx((0.22277810, 0.95672813), abs=1e-7)  # Clopper-Pearson 4/6
    assert (o.accepted_present.k, o.accepted_present.n) == (1, 2)
    assert (o.rejected_present.k, o.rejected_present.n) == (0, 2)
    d = res.to_dict()
    assert d["overall"]["acceptance"]["rate"] == pytest.approx(4 / 6) and d["notes"]


def test_no_table_or_no_submitted_read_says_so():
    assert box_review_summary(None, CASES).overall is None
    assert box_review_summary(pd.DataFrame(), CASES).notes
    unsubmitted = BOXES.assign(submitted=0)
    res = box_review_summary(unsubmitted, CASES)
    assert res.overall is None and res.n_reads == 0 and "no submitted read" in res.notes[0]
    # Without a cases table the acceptance is still counted; the reference shares have nothing to count
    res = box_review_summary(BOXES, None)
    assert res.overall.acceptance.n == 6 and res.overall.accepted_present.n == 0


def test_the_report_section_lays_out_the_counts():
    html = _engine().get_template("analysis/report/box_review.html").render(
        Context({"br": box_review_summary(BOXES, CASES).to_dict()}, use_l10n=False))
    assert "7 boxes shown in 3 submitted reads: readers accepted 4, rejected 2 and left 1 undecided" in html
    assert "<td>pleural_effusion</td><td class=num>4</td>" in html and "3/4 (75" in html
    assert "(none named)" in html
    empty = _engine().get_template("analysis/report/box_review.html").render(
        Context({"br": box_review_summary(None, CASES).to_dict()}, use_l10n=False))
    assert empty.strip() == ""
