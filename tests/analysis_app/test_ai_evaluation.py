"""Issue 20 end to end on a simulated trial: the export's new columns (reader position, text metrics, the draft's
calls after lock only) and results['ai_evaluation'] (arena ranking, interaction, text metrics)."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.export import build_export
from analysis.services import run_analysis
from tests.analysis_app.report_support import assert_typed_sections_render_as_their_dicts
from trial import services
from trial.models import Trial

pytestmark = pytest.mark.django_db


def test_export_columns_and_ai_evaluation(tmp_path, make_small_trial):
    out = make_small_trial(code="ARENA", lock=False)
    trial = out["trial"]
    codes = trial.finding_codes
    before = build_export(trial)
    reads = pd.DataFrame(before.tables["reads"])
    # Before lock the arm-specific columns are withheld and listed in the manifest.
    assert {"draft_<finding>", "draft_bleu"} <= set(before.manifest["withheld_until_lock"]["reads"])
    assert not [c for c in reads.columns if c.startswith("draft_")]
    # Positions run 1..n within each reader, in submission order.
    for _, g in reads.groupby("reader"):
        assert sorted(g["reader_position"]) == list(range(1, len(g) + 1))
    assert reads["bleu"].between(0, 1).all() and reads["meteor"].between(0, 1).all()
    drafts = pd.DataFrame(before.tables["drafts"])
    assert drafts["rouge_l"].between(0, 1).all()

    coord = trial.memberships.get(role="coordinator").user
    trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")
    after = pd.DataFrame(build_export(trial).tables["reads"])
    ai = after[after["arm"] == "ai_assisted"]
    assert set(ai[f"draft_{codes[0]}"]) <= {0, 1}
    assert (after.loc[after["arm"] == "unassisted", "draft_bleu"] == "").all()

    res = run_analysis(trial, tmp_path / "run")
    ev = res["ai_evaluation"]
    ranking = ev["arena"]["ranking"]
    assert {i["item"] for i in ranking["items"]} == {"ai_assisted", "unassisted"}
    assert ranking["reference"] == "unassisted" and ranking["n_bootstrap"] == 500
    assert ev["arena"]["tie_rate"]["n"] == ranking["n_comparisons"] > 0
    inter = ev["interaction"]
    assert inter["n_reads_with_draft"] == len(ai)
    # Independent check: reading.services.draft_changes counted the flipped findings when each read was submitted;
    # flipped = removed + added.
    assert inter["totals"]["removed"] + inter["totals"]["added"] == int(pd.to_numeric(ai["n_flipped_findings"]).sum())
    assert {c["ai_correct"] for c in inter["automation_bias"]} == {True, False}
    assert len(inter["overrides"]) == len(codes)
    tm = ev["text_metrics"]
    assert set(tm["final_by_arm"]) == {"ai_assisted", "unassisted"}
    labels = {(c["metric"], c["label_a"]) for c in tm["comparisons"]}
    assert ("bleu", "final ai_assisted") in labels and ("meteor", "final report") in labels
    html = (tmp_path / "run" / "report" / "report.html").read_text()
    for heading in ("Report arena", "Human-AI interaction", "Automation bias", "Report-text metrics"):
        assert heading in html
    page = assert_typed_sections_render_as_their_dicts(tmp_path / "run")
    assert "Automation bias" in page and "Human-AI interaction" in page
