"""Issue 20: a three-arm demo-sized trial end to end (two model versions + unassisted): setup, enrolment, drafts by
the real Celery task (in-process), reads, uniformly drawn rating pairs, ratings, lock, analysis. The report's
results carry the arena ranking of the three arms with CIs and the declared multi-arm primary analysis."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from analysis.models import AnalysisRun
from demo.three_arm import (
    AI_ARMS,
    THREE_ARM_CODE,
    analyse_as_statistician,
    lock_trial,
    results_path,
    seed_three_arm_demo,
)
from inference.models import Draft
from rating.models import ArenaTask, Rating

pytestmark = pytest.mark.django_db(transaction=True)


def _results(run: AnalysisRun) -> dict:
    assert run.status == AnalysisRun.Status.DONE, run.error
    return json.loads(results_path(run).read_text())


def test_three_arm_demo_end_to_end():
    demo = seed_three_arm_demo(n_cases=12, lock=False)
    trial = demo.trial
    assert not trial.is_locked and trial.arms.count() == 3
    # Before lock: the three arms are masked; the analysis runs, names no arm and lists no draft error.
    masked = _results(analyse_as_statistician(trial))
    assert masked["labels"]["masked"] and masked["multi_arm"] is None
    assert {i["item"] for i in masked["ai_evaluation"]["arena"]["ranking"]["items"]} == {"X", "Y", "Z"}
    assert masked["error_analysis"]["masked"] and masked["error_analysis"]["draft_errors"] == []
    assert masked["consort"]["files_refused"] == {"too_small": 1}
    # The standalone arena: every case's pair of the two versions' drafts, judged by the experts; withheld until lock.
    arena_tasks = ArenaTask.objects.filter(case__trial=trial)
    assert arena_tasks.values("case").distinct().count() == 12
    assert arena_tasks.count() == 12 * trial.expert_panel_size
    assert not arena_tasks.exclude(status=ArenaTask.Status.DONE).exists()
    assert masked["ai_evaluation"]["draft_arena"] is None
    masked_html = (results_path(AnalysisRun.objects.filter(trial=trial).latest("pk")).parent
                   / "report.html").read_text()
    assert not any(a in masked_html for a in ("baseline_k10", "baseline_k3", "retrieval-baseline-k"))

    trial = lock_trial(trial)
    assert trial.is_locked
    drafts = Draft.objects.filter(case__trial=trial)
    assert drafts.filter(status="ready").count() == 2 * 12  # one draft per case and model version
    assert set(drafts.values_list("model_version__name", flat=True)) == {a[2] for a in AI_ARMS}
    ratings = Rating.objects.filter(case__trial=trial)
    pairs = {tuple(sorted((r.read_a.arm.code, r.read_b.arm.code))) for r in ratings.select_related(
        "read_a__arm", "read_b__arm")}
    assert len(pairs) >= 2  # pairs drawn among the three arms
    run = analyse_as_statistician(trial)
    results = _results(run)
    arena = results["ai_evaluation"]["arena"]
    items = {i["item"]: i for i in arena["ranking"]["items"]}
    assert set(items) == {"unassisted", "baseline_k10", "baseline_k3"}
    assert arena["ranking"]["reference"] == "unassisted"
    for it in items.values():
        lo, hi = it["ci"]
        assert lo is not None and hi is not None and lo <= it["log_strength"] <= hi
        assert it["rank_ci"] is not None
    assert arena["ranking"]["n_bootstrap"] > 0
    multi = results["multi_arm"]
    assert multi["control"] == "unassisted" and multi["rule"].startswith("Bonferroni")
    assert [c["arm"] for c in multi["contrasts"]] == ["baseline_k10", "baseline_k3"]
    for c in multi["contrasts"]:
        assert c["alpha"] == pytest.approx(0.025)
        assert c["primary"]["quality"]["estimate"] is not None
    assert results["consort"]["by_arm"].keys() == {"unassisted", "baseline_k10", "baseline_k3"}
    html = (results_path(run).parent / "report.html").read_text()
    assert "Several AI arms: each against unassisted" in html and "baseline_k3 vs unassisted" in html
    assert "Report arena" in html and "baseline_k10" in html
    errors = results["error_analysis"]
    assert not errors["masked"] and errors["failed_drafts"] == []
    assert len(errors["draft_errors"]) == sum(d["errors"] for d in errors["by_finding"].values())
    assert {e["arm"] for e in errors["draft_errors"]} <= {"baseline_k10", "baseline_k3"}
    assert {e["outcome"] for e in errors["draft_errors"]} <= {"kept the error", "corrected"}
    assert "<h2>Error analysis</h2>" in html
    draft_arena = results["ai_evaluation"]["draft_arena"]
    assert draft_arena["n_judgements"] == arena_tasks.count()
    assert {i["item"] for i in draft_arena["ranking"]["ranking"]["items"]} == {a[2] for a in AI_ARMS}
    assert draft_arena["flow"]["cases_in_arena"] == 12 and sum(draft_arena["flow"]["excluded_drafts"].values()) == 0
    assert "Arena (drafts, no readers)" in html
    # the refused input, by reason, in the CONSORT flow and the checklist
    assert results["consort"]["files_refused"] == {"too_small": 1}
    poor = next(i for i in results["consort_ai"]["items"] if i["consort_ai"] == "5(iii)")
    assert "import refusals by reason: too_small 1" in poor["recorded"]
    errors_item = next(i for i in results["consort_ai"]["items"] if i["consort_ai"] == "19")
    assert "error listing for expert review" in errors_item["recorded"]
    # a second seed returns the same trial, with its latest analysis
    again = seed_three_arm_demo(n_cases=12)
    assert not again.created and again.trial.pk == trial.pk and again.analysis.pk == run.pk
    assert THREE_ARM_CODE == trial.code


def test_seed_demo_command_three_arms():
    out = io.StringIO()
    call_command("seed_demo", "--arms", "3", stdout=out)
    text = out.getvalue()
    assert f"Three-arm demo trial {THREE_ARM_CODE} seeded" in text
    assert "arms baseline_k10, baseline_k3, unassisted, status locked" in text
    assert "Analysis run" in text and ": done." in text
    judged = ArenaTask.objects.filter(status=ArenaTask.Status.DONE).count()
    assert judged > 0 and f"Arena: {judged} judgements of 2 model versions' drafts." in text
