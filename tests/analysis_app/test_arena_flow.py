"""The export manifest's arena flow (analysis.export.arena_flow; docs/ai-evaluation.md, "Standalone arena"): the
drafts the arena leaves out, by reason, counted with a constant number of queries whatever the number of cases, and
the same numbers as the per-case rule it replaced (rating.services.arena_drafts, one query per case)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analysis.export import arena_flow
from inference.selectors import arena_model_versions
from rating import services as rating_services
from rating.models import ArenaTask
from tests.rating.arena_support import arena_trial, spoil_drafts
from trial import services as trial_services
from trial.models import Case, Trial

pytestmark = pytest.mark.django_db


def _per_case_flow(trial: Trial) -> dict:
    """The flow as arena_flow counted it before: arena_drafts case by case."""
    versions = arena_model_versions(trial)
    excluded = dict.fromkeys(rating_services.ARENA_EXCLUSIONS, 0)
    cases = (Case.objects.filter(trial=trial, enrolled_at__isnull=False, library=False)
             .exclude(status=Case.Status.EXCLUDED).order_by("pk"))
    for case in cases:
        for reason, n in rating_services.arena_drafts(case, versions)[1].items():
            excluded[reason] += n
    tasks = ArenaTask.objects.filter(case__trial=trial)
    return {"model_versions": [mv.name for mv in versions], "cases_enrolled": cases.count(),
            "cases_in_arena": tasks.values("case").distinct().count(), "tasks": tasks.count(),
            "judgements": tasks.filter(status=ArenaTask.Status.DONE).count(), "excluded_drafts": excluded}


def _flow_with_queries(n: int) -> tuple[dict, int]:
    t = arena_trial(code=f"AFQ{n}", versions=3, cases=n + 1, experts=1, panel=1)
    spoil_drafts(t)
    # n cases in the arena: one more is excluded, and its drafts are not counted (its failed one would be).
    trial_services.exclude_case(t["coordinator"], t["cases"][-1], reason="withdrawn")
    t["cases"][-1].drafts.filter(model_version=t["versions"][2]).update(status="failed")
    with CaptureQueriesContext(connection) as queries:
        flow = arena_flow(t["trial"])
    assert flow == _per_case_flow(t["trial"])
    assert flow["excluded_drafts"] == {"missing": 1, "queued": 1, "failed": 1, "withheld": 1, "empty": 1}
    assert flow["cases_enrolled"] == n and set(flow["model_versions"]) == {mv.name for mv in t["versions"]}
    return flow, len(queries)


def test_arena_flow_takes_a_constant_number_of_queries_and_counts_as_before():
    (_, two), (_, twenty) = _flow_with_queries(2), _flow_with_queries(20)
    assert two == twenty <= 8, (two, twenty)  # the versions, the cases, one query for all drafts, the task counts
