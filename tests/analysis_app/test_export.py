"""The export: arms masked as X/Y before lock and named after; the manifest's data hash follows the data."""
from __future__ import annotations

import json

import pytest

from analysis.export import build_export
from analysis.services import run_analysis
from rating.models import Rating
from trial import services
from trial.models import Trial

pytestmark = pytest.mark.django_db


def _arms_in(export) -> set[str]:
    arms = {r["arm"] for r in export.tables["reads"]} | {r["arm"] for r in export.tables["allocations"]}
    for r in export.tables["ratings"]:
        arms |= {r["arm_a"], r["arm_b"]} - {""}
    return arms


@pytest.mark.requirement("CAI-1", "BLD-1")
def test_export_masks_arms_before_lock_and_names_them_after(tmp_path, make_small_trial):
    out = make_small_trial(code="MASK", lock=False)
    trial = out["trial"]
    before = build_export(trial)
    assert _arms_in(before) == {"X", "Y"}
    assert before.manifest["arms_masked"] is True and before.manifest["assisted_arm"] is None
    assert {r["model_version"] for r in before.tables["drafts"]} == {"model"}
    text = "".join(before.csv_text(n) for n in before.tables)
    assert "ai_assisted" not in text and "unassisted" not in text

    # The masked analysis compares X with Y and says so; an excluded case leaves the analysis set, with its reason.
    coord = trial.memberships.get(role="coordinator").user
    services.exclude_case(coord, trial.cases.order_by("code").first(), reason="Wrong patient")
    res = run_analysis(trial, tmp_path / "masked")
    assert res["labels"] == {"assisted": "X", "control": "Y", "masked": True}
    assert res["consort"]["cases_excluded"] == 1 and res["consort"]["exclusion_reasons"] == {"Wrong patient": 1}
    assert res["consort"]["cases_enrolled"] == 7 and res["quality"]["n_pairs"] == 7
    assert any("masked" in w for w in res["warnings"])
    html = (tmp_path / "masked" / "report" / "report.html").read_text()
    assert "Arms are masked" in html and "ai_assisted" not in html

    trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")
    after = build_export(trial)
    assert _arms_in(after) == {"ai_assisted", "unassisted"}
    assert after.manifest["arms_masked"] is False and after.manifest["assisted_arm"] == "ai_assisted"
    # the mask is a relabelling: the same rows, one label each way
    mapping = {}
    for b, a in zip(before.tables["reads"], after.tables["reads"], strict=True):
        assert b["read_id"] == a["read_id"]
        mapping.setdefault(b["arm"], set()).add(a["arm"])
    assert all(len(v) == 1 for v in mapping.values()) and len(mapping) == 2


def test_manifest_hash_changes_when_data_changes(tmp_path, make_small_trial):
    trial = make_small_trial(code="HASH", lock=False)["trial"]
    e1, e2 = build_export(trial), build_export(trial)
    assert e1.manifest["data_sha256"] == e2.manifest["data_sha256"]  # stable when nothing changed
    assert e1.manifest["generated_at"] != "" and e1.manifest["code_version"]

    rating = Rating.objects.filter(case__trial=trial).order_by("pk").first()
    Rating.objects.filter(pk=rating.pk).update(quality_a=1 if rating.quality_a != 1 else 2)
    e3 = build_export(trial)
    assert e3.manifest["data_sha256"] != e1.manifest["data_sha256"]
    assert e3.manifest["tables"]["ratings"]["sha256"] != e1.manifest["tables"]["ratings"]["sha256"]
    assert e3.manifest["tables"]["reads"]["sha256"] == e1.manifest["tables"]["reads"]["sha256"]

    e3.write(tmp_path)
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["data_sha256"] == e3.manifest["data_sha256"]
    assert (tmp_path / "data_dictionary.csv").read_text().startswith("table,column,description")
