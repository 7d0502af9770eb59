"""The standalone arena in the export, the analysis and the report (issue 20 item 1; docs/ai-evaluation.md,
"Standalone arena"): its judgements are withheld before lock (they name the model versions); after lock the report's
"Arena (drafts, no readers)" section ranks the versions by Davidson's Bradley-Terry with ties, on a simulated arena
with known strengths, and results.json carries it."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.evaluation import arena_comparisons, draft_arena
from analysis.export import build_export
from analysis.services import run_analysis
from inference.models import Draft, OodAction
from inference.services import register_model_version, set_arena_model_versions
from rating import services as rating_services
from rating.models import ArenaTask
from tests.analysis_app.report_support import assert_typed_sections_render_as_their_dicts
from tests.factories.reading import ready_draft
from trial import services
from trial.models import Trial

# Known log-strengths (Davidson): the simulated experts' judgements follow them, so the ranking must too.
STRENGTHS = {"arena-alpha": 1.5, "arena-beta": 0.0, "arena-gamma": -1.5}
NU = 0.5  # Davidson's tie parameter of the simulation


def davidson_outcome(rng: np.random.Generator, left: float, right: float, nu: float = NU) -> str:
    d = left - right
    w = np.array([np.exp(d / 2), np.exp(-d / 2), nu])
    return ("A", "B", "tie")[rng.choice(3, p=w / w.sum())]


def test_ranking_of_a_simulated_arena_table_recovers_known_strengths():
    """No database: the arena table as exported, 900 judgements, sides drawn per task."""
    rng = np.random.default_rng(3)
    names = list(STRENGTHS)
    rows = []
    for k in range(900):
        a, b = rng.choice(names, 2, replace=False)
        rows.append({"case_code": f"C{k % 300}", "expert": f"E{k % 5}", "model_a": a, "model_b": b,
                     "preference": davidson_outcome(rng, STRENGTHS[a], STRENGTHS[b]), "status": "done"})
    table = pd.DataFrame(rows)
    comparisons = arena_comparisons(table)
    assert len(comparisons) == 900 and set(comparisons["outcome"]) == {"left", "right", "tie"}
    res = draft_arena(table, n_bootstrap=200, seed=1)
    ranking = res.ranking.ranking
    assert [i.item for i in sorted(ranking.items, key=lambda i: i.rank)] == names
    ref = ranking.reference
    for item in ranking.items:  # each log-strength (relative to the reference) within its CI of the truth
        lo, hi = item.ci
        assert lo <= STRENGTHS[item.item] - STRENGTHS[ref] <= hi
    assert ranking.tie_parameter_ci[0] <= NU <= ranking.tie_parameter_ci[1]
    assert res.ranking.tie_rate.n == 900 and res.ranking.position_bias.n_decisive == 900 - res.ranking.tie_rate.ties
    assert res.ranking.position_bias.p > 0.001  # no position effect was simulated
    assert draft_arena(pd.DataFrame()) is None


@pytest.mark.django_db
def test_arena_withheld_before_lock_then_ranked_in_the_report(tmp_path, make_small_trial):
    out = make_small_trial(code="DARENA", cases=18, experts=3, lock=False)
    trial = out["trial"]
    coord = trial.memberships.get(role="coordinator").user
    base = Draft.objects.filter(case__trial=trial).first().model_version
    versions = [register_model_version(name=name, backend="retrieval") for name in STRENGTHS]
    set_arena_model_versions(actor=coord, trial=trial, model_versions=versions)
    assert base not in versions
    cases = list(trial.cases.filter(enrolled_at__isnull=False).order_by("code"))
    for case in cases:
        for i, mv in enumerate(versions):
            ready_draft(case, mv, findings_text=f"Heart size normal. Version text {i}.", impression_text="Normal.")
    withheld = Draft.objects.get(case=cases[0], model_version=versions[0])
    withheld.ood_action = OodAction.WITHHELD
    withheld.save()
    draw = rating_services.create_arena_tasks(actor=coord, trial=trial)
    assert draw.excluded_drafts["withheld"] == 1 and draw.tasks_made == 3 * len(cases)
    rng = np.random.default_rng(11)
    by_name = {mv.pk: mv.name for mv in versions}
    for task in ArenaTask.objects.filter(case__trial=trial).select_related("draft_a", "draft_b", "expert__user"):
        a, b = by_name[task.draft_a.model_version_id], by_name[task.draft_b.model_version_id]
        answer = {"preference": davidson_outcome(rng, STRENGTHS[a], STRENGTHS[b]), "quality_a": 3}
        rating_services.submit_arena_task(task.expert.user, task, answer)

    before = build_export(trial)
    assert "arena" not in before.tables and "arena" in before.manifest["tables_withheld_until_lock"]
    assert before.manifest["arena"] is None
    text = json.dumps(before.manifest) + "".join(before.csv_text(n) for n in before.tables)
    assert not any(name in text for name in STRENGTHS)  # no version name before lock

    trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")
    after = build_export(trial)
    table = pd.DataFrame(after.tables["arena"])
    assert len(table) == 3 * len(cases) and set(table["model_a"]) | set(table["model_b"]) == set(STRENGTHS)
    assert set(table["preference"]) <= {"A", "B", "tie"} and (table["status"] == "done").all()
    flow = after.manifest["arena"]
    assert flow["model_versions"] == sorted(STRENGTHS) and flow["excluded_drafts"]["withheld"] == 1
    assert flow["judgements"] == len(table) and flow["cases_in_arena"] == len(cases)
    assert any(d["table"] == "arena" for d in after.dictionary)

    res = run_analysis(trial, tmp_path / "run")
    section = res["ai_evaluation"]["draft_arena"]
    ranking = section["ranking"]["ranking"]
    assert [i["item"] for i in sorted(ranking["items"], key=lambda i: i["rank"])] == list(STRENGTHS)
    assert ranking["n_comparisons"] == section["n_judgements"] == len(table)
    assert section["ranking"]["tie_rate"]["n"] == len(table)
    assert section["ranking"]["position_bias"]["n_decisive"] == len(table) - section["ranking"]["tie_rate"]["ties"]
    assert section["flow"]["excluded_drafts"]["withheld"] == 1
    html = (tmp_path / "run" / "report" / "report.html").read_text()
    part = html[html.index("Arena (drafts, no readers)"):html.index("Human-AI interaction")]
    assert "ranking of the model versions" in part and all(name in part for name in STRENGTHS)
    assert "1 withheld (out of distribution)" in part and "Left (A) draft preferred" in part
    assert "Left (A) draft preferred" in assert_typed_sections_render_as_their_dicts(tmp_path / "run")
