"""results.json stays the same when the result classes change shape (docs/architecture.md, "Analysis results and
the report"): the whole analysis of a small synthetic trial (the report test's size: 40 cases, 6 readers, 3
experts, 2 centers, seed 5) against the results.json the code wrote before ``PrimaryResult.details`` became typed.

The reference file is regression data written by this repository's own analysis (``analyse_results(...).to_dict()``
dumped with ``json.dump(indent=1)`` at commit 287c029), not a published result: regenerate it only for a
deliberate change of the numbers, and say why in docs/NOTES.md. Keys must match in name and order; numbers to 1e-7
relative: the numbers an optimiser finds (a centre subgroup's Satterthwaite df near 1.6, the arena's Bradley-Terry
standard errors) move by ~1e-8 relative between CPUs (the eighth session's machine: up to 8.7e-9 against the
file), while a change of method moves them by far more."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from analysis.pipeline import analyse_results
from analysis.stats.synthetic import make_trial_tables

GOLDEN = Path(__file__).parent / "golden" / "results_paired_by_case_40.json"
MANIFEST = {"trial": "GOLD", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
            "data_sha256": "ab" * 32, "code_version": "test", "preference_majority": 2}


def _differences(got: Any, want: Any, path: str = "$") -> list[str]:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {type(got).__name__} instead of an object"]
        if list(got) != list(want):
            return [f"{path}: keys {list(got)} instead of {list(want)}"]
        return [d for k in want for d in _differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r:.80} instead of {want!r:.80}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in _differences(g, w, f"{path}[{i}]")]
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        return [] if math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-12) else [f"{path}: {got!r} != {want!r}"]
    return [] if got == want and type(got) is type(want) else [f"{path}: {got!r:.80} != {want!r:.80}"]


def test_results_json_of_the_small_trial_is_unchanged():
    tables = make_trial_tables(n_cases=40, n_readers=6, n_experts=3, n_centers=2, seed=5)
    got = json.loads(json.dumps(analyse_results(tables, MANIFEST).to_dict()))
    want = json.loads(GOLDEN.read_text())
    assert "details" in want["primary"]["preference"] and want["primary"]["preference"]["details"]["null_share"]
    diffs = _differences(got, want)
    assert not diffs, "\n".join(diffs[:20])
