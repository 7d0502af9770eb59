"""``primary_summary`` reads the typed results (docs/architecture.md, "Analysis results and the report"): its
``to_dict()`` (the runs page, the API, results.json's ``summary``) must stay what the dict-reading function wrote.

The reference file holds the summaries of three small synthetic trials (the golden results test's trial, a masked
one and an empty one) as written by the dict-reading ``primary_summary`` at commit 45e9564, before it read the
dataclasses; regression data of this repository, not a published result. Numbers to 1e-9 relative; ``engine``
(library versions) against the typed block's own."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.pipeline import PrimarySummary, analyse_results, primary_summary
from analysis.stats.synthetic import make_trial_tables
from tests.analysis_app.test_results_golden import MANIFEST, _differences

GOLDEN = Path(__file__).parent / "golden" / "summary_small_trials.json"


def _trials():
    yield "paired_by_case_40", make_trial_tables(n_cases=40, n_readers=6, n_experts=3, n_centers=2, seed=5), MANIFEST
    yield "masked_30", make_trial_tables(n_cases=30, n_readers=4, n_experts=2, n_centers=2, seed=2,
                                         assisted_arm="X", control_arm="Y"), \
        {"trial": "MSK", "design": "paired_by_case", "arms_masked": True, "assisted_arm": None}
    yield "empty", {}, {"trial": "EMPTY", "design": "paired_by_case", "arms_masked": True}


@pytest.mark.parametrize("name,tables,manifest", list(_trials()), ids=lambda x: x if isinstance(x, str) else "")
def test_summary_of_the_typed_results_is_unchanged(name, tables, manifest):
    results = analyse_results(tables, manifest)
    summary = primary_summary(results)
    assert isinstance(summary, PrimarySummary)
    got = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    want = json.loads(GOLDEN.read_text())[name]
    want["engine"] = results.primary.engine
    diffs = _differences(got, want)
    assert not diffs, "\n".join(diffs[:20])
    if name == "paired_by_case_40":  # the typed fields are the block's own numbers, not copies through a dict
        assert summary.preference_k == results.primary.preference.details.k == 2
        assert summary.time_relative_reduction == pytest.approx(1 - results.primary.reading_time.estimate)
