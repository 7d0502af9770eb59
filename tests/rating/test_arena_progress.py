"""The arena on the coordinator's pages (issue 20 item 1; docs/ai-evaluation.md, "Standalone arena"): its counts on
the trial's progress page and API (tasks, submitted, per expert; an empty state before the draw), and the arena
page's left-out drafts counted with a constant number of queries whatever the number of cases."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from rating import selectors
from rating import services as rating_services
from rating.models import ArenaTask
from tests.factories.trial import PASSWORD
from tests.rating.arena_support import arena_trial, spoil_drafts

pytestmark = pytest.mark.django_db

ANSWER = {"preference": "A", "quality_a": 4, "quality_b": 2, "comment": ""}


def _left_out_with_queries(n: int) -> int:
    t = arena_trial(code=f"AQ{n}", versions=3, cases=n, experts=1, panel=1)
    spoil_drafts(t)
    with CaptureQueriesContext(connection) as queries:
        page = selectors.arena_coordinator_page(t["coordinator"], t["trial"])
    # The same counts as the draw's own per-case rule (rating.services.arena_drafts), case by case.
    expected = dict.fromkeys(rating_services.ARENA_EXCLUSIONS, 0)
    for case in t["cases"]:
        for reason, k in rating_services.arena_drafts(case, t["versions"])[1].items():
            expected[reason] += k
    assert page["left_out"] == expected == {"missing": 1, "queued": 1, "failed": 1, "withheld": 1, "empty": 1}
    assert page["left_out_total"] == 5 and page["enrolled_cases"] == n
    return len(queries)


def test_left_out_drafts_take_a_constant_number_of_queries():
    two, twenty = _left_out_with_queries(2), _left_out_with_queries(20)
    assert two == twenty <= 12, (two, twenty)  # the role checks, the versions, the counts, one query for all drafts


def test_progress_page_and_api_show_the_arena(client):
    t = arena_trial(code="APG", versions=2, cases=2, experts=2, panel=1)
    trial, coordinator = t["trial"], t["coordinator"]
    assert client.login(username=coordinator.username, password=PASSWORD)
    url = reverse("trial:detail", args=[trial.code])
    html = client.get(url).content.decode()
    assert 'id="arena-empty"' in html and 'id="progress-arena-experts"' not in html  # nothing drawn yet
    api = APIClient()
    api.force_authenticate(coordinator)
    got = api.get(reverse("trial-progress", args=[trial.code])).json()
    assert (got["arena_total"], got["arena_done"], got["arena_by_expert"]) == (0, 0, [])

    rating_services.create_arena_tasks(actor=coordinator, trial=trial)
    tasks = list(ArenaTask.objects.filter(case__trial=trial).select_related("expert__user").order_by("pk"))
    assert len(tasks) == 2  # one case each way round: two cases, a panel of one
    rating_services.submit_arena_task(tasks[0].expert.user, tasks[0], ANSWER)
    rating_services.open_arena_task(tasks[1].expert.user, tasks[1])

    html = client.get(url).content.decode()
    assert 'id="arena-empty"' not in html
    assert re.search(r'id="arena-total">2<', html) and re.search(r'id="arena-done">1<', html)
    assert re.search(r'id="arena-in-progress">1<', html)
    table = re.search(r'<table id="progress-arena-experts">(.*?)</table>', html, re.S).group(1)
    by_expert = {}
    for task in tasks:
        by_expert.setdefault(task.expert.user.username, []).append(task)
    for name, own in by_expert.items():
        row = re.search(rf'<tr data-row="{name}">(.*?)</tr>', table, re.S).group(1)
        done = sum(1 for x in own if x.pk == tasks[0].pk)
        assert f'data-col="done">{done}<' in row
    got = api.get(reverse("trial-progress", args=[trial.code])).json()
    assert (got["arena_total"], got["arena_done"], got["arena_in_progress"]) == (2, 1, 1)
    assert sorted(r["expert"] for r in got["arena_by_expert"]) == sorted(by_expert)
    # Counts only: no model version is named in what the progress API answers.
    body = str(got)
    assert not any(mv.name in body for mv in t["versions"])
