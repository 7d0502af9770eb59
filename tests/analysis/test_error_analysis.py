"""Error analysis (analysis.evaluation.error_analysis; issue 20): draft errors by the reference standard and what
the readers did with them, failed drafts and their reads. Known values from a hand-made export."""
from __future__ import annotations

import pandas as pd

from analysis.evaluation import error_analysis
from analysis.pipeline import prepare_tables

F = ["pneumonia", "effusion"]


def _tables() -> dict[str, pd.DataFrame]:
    cases = pd.DataFrame({"case_code": ["C1", "C2", "C3"], "status": ["read", "read", "excluded"],
                          "enrolled": [1, 1, 1], "ref_pneumonia": [1, 0, 1], "ref_effusion": [0, 0, 0]})
    reads = pd.DataFrame([
        # C1, AI arm: draft misses pneumonia (reader keeps it), calls effusion wrongly (reader corrects it)
        {"case_code": "C1", "arm": "ai", "reader": "R1", "status": "done", "draft_shown": 1, "draft_pneumonia": 0,
         "draft_effusion": 1, "finding_pneumonia": 0, "finding_effusion": 0},
        {"case_code": "C1", "arm": "unassisted", "reader": "R2", "status": "done", "draft_shown": "",
         "draft_pneumonia": "", "draft_effusion": "", "finding_pneumonia": 1, "finding_effusion": 0},
        # C2, AI arm: a false-positive pneumonia, read not submitted
        {"case_code": "C2", "arm": "ai", "reader": "R1", "status": "open", "draft_shown": 1, "draft_pneumonia": 1,
         "draft_effusion": 0, "finding_pneumonia": "", "finding_effusion": ""},
        # C2, second AI arm: its draft was withheld (not shown): not an error a reader saw
        {"case_code": "C2", "arm": "ai2", "reader": "R3", "status": "done", "draft_shown": 0, "draft_pneumonia": 1,
         "draft_effusion": 1, "finding_pneumonia": 0, "finding_effusion": 0},
        {"case_code": "C2", "arm": "unassisted", "reader": "R2", "status": "done", "draft_shown": "",
         "draft_pneumonia": "", "draft_effusion": "", "finding_pneumonia": 1, "finding_effusion": 0},
        # C3 is excluded: left out
        {"case_code": "C3", "arm": "ai", "reader": "R1", "status": "done", "draft_shown": 1, "draft_pneumonia": 0,
         "draft_effusion": 1, "finding_pneumonia": 0, "finding_effusion": 1},
    ])
    drafts = pd.DataFrame({"case_code": ["C1", "C2", "C3"], "model_version": ["m1", "m2", "m2"],
                           "status": ["ready", "failed", "failed"], "failure": ["", "timed_out", "error"]})
    return {"cases": cases, "reads": reads, "drafts": drafts, "ratings": pd.DataFrame()}


def test_draft_errors_and_what_readers_did():
    raw = _tables()
    res = error_analysis(raw, prepare_tables(raw), F, ["ai", "ai2"], "unassisted", masked=False)
    got = sorted((r.case_code, r.finding, r.arm, r.error, r.reader_call, r.outcome, r.unassisted_right,
                  r.unassisted_reads) for r in res.draft_errors)
    assert got == [("C1", "effusion", "ai", "false positive", 0, "corrected", 1, 1),
                   ("C1", "pneumonia", "ai", "false negative", 0, "kept the error", 1, 1),
                   ("C2", "pneumonia", "ai", "false positive", None, "not submitted", 0, 1)]
    assert res.by_finding == {
        "pneumonia": {"errors": 2, "false_positive": 1, "false_negative": 1, "kept": 1, "corrected": 0,
                      "not_submitted": 1},
        "effusion": {"errors": 1, "false_positive": 1, "false_negative": 0, "kept": 0, "corrected": 1,
                     "not_submitted": 0}}
    # the failed draft of C2 (C3 is excluded): its AI-arm reads, one open, one read without a draft
    assert [(f.case_code, f.model_version, f.failure, f.reads) for f in res.failed_drafts] == [
        ("C2", "m2", "timed_out", {"not submitted": 1, "read without a draft": 1})]
    assert res.failures_by_kind == {"timed_out": 1}
    assert res.to_dict()["draft_errors"][0]["case_code"] in {"C1", "C2"}


def test_masked_lists_no_draft_calls_and_counts_reads_over_all_arms():
    raw = _tables()
    res = error_analysis(raw, prepare_tables(raw), F, [], None, masked=True)
    assert res.draft_errors == [] and res.by_finding == {}
    assert "after lock" in res.notes[0]
    assert [f.reads for f in res.failed_drafts] == [{"not submitted": 1, "submitted": 2}]
