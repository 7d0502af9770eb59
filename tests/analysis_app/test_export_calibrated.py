"""drafts.csv carries the calibrated probabilities shown to readers beside the raw ones, and the calibration record
applied (docs/calibration.md), documented in the data dictionary; the analysis draws them as their own series."""
from __future__ import annotations

import pytest

from analysis.export import build_export
from inference.models import Draft


def test_drafts_table_has_raw_and_calibrated_probabilities(make_small_trial):
    trial = make_small_trial(code="CALX", lock=False)["trial"]
    codes = trial.finding_codes
    calibrated = Draft.objects.filter(case__trial=trial).order_by("case__code").first()
    Draft.objects.filter(pk=calibrated.pk).update(
        calibrated_probabilities={codes[0]: 0.4242424242}, parameters={"calibration": {"id": 12, "n_cases": 30}})
    export = build_export(trial)
    rows = {r["case_code"]: r for r in export.tables["drafts"]}
    row = rows[calibrated.case.code]
    assert row[f"calprob_{codes[0]}"] == pytest.approx(0.424242) and row["calibration_id"] == 12
    assert row[f"calprob_{codes[1]}"] == "" and row[f"prob_{codes[0]}"] == round(calibrated.probabilities[codes[0]], 6)
    others = [r for code, r in rows.items() if code != calibrated.case.code]
    assert others and all(r["calibration_id"] == "" and r[f"calprob_{codes[0]}"] == "" for r in others)
    described = {(d["table"], d["column"]) for d in export.dictionary}
    assert ("drafts", "calprob_<finding>") in described and ("drafts", "calibration_id") in described
