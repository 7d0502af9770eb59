"""Attacks on the case page's API (enrolment.api.CaseOverviewAPI) now that it carries the page's rating-task rows
(seventh session), by insiders: a coordinator who also rates (on the case's panel or not), a coordinator who also
reads, and experts and readers without the coordinator role.

The rule is the page's (enrolment.selectors.case_overview; docs/design.md section 5, one person one side): a rating
task row is its expert, status and submission time, never its A/B order, reads, answers or arm; until lock, a
coordinator who also reads or rates sees no arm, no draft, no reader's name, and no amendment link (not even to
their own task: the page refuses others' and the case page links none); the API says exactly what the page shows.
"""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from inference.selectors import arm_model_version
from rating import services as rating_services
from rating.models import Rating
from reading.models import Read
from tests.factories.rating import GOOD, complete_case, rating_trial
from trial import services as trial_services
from trial.models import Membership, Trial

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("BLD-1")]

SENTINEL = "Quetzal-sentinel comment of the other expert"
ROW_KEYS = {"expert", "status", "submitted_at", "amend_url"}


@pytest.fixture
def rated(db):
    """One paired case read in both arms; a panel of two of three experts; both panel ratings submitted (the second
    with a sentinel comment); the third expert rates nothing of this case."""
    t = rating_trial(code="CAX", experts=3, panel=2, cases=1, ai_model=True)
    case = t["cases"][0]
    complete_case(case)
    tasks = list(Rating.objects.filter(case=case).select_related("expert__user", "read_a", "read_b").order_by("pk"))
    assert len(tasks) == 2
    rating_services.submit_rating(tasks[0].expert.user, tasks[0], GOOD)
    rating_services.submit_rating(tasks[1].expert.user, tasks[1], {**GOOD, "comment": SENTINEL})
    panel = {task.expert_id for task in tasks}
    t.update(case=case, tasks=tasks, outside=next(e for e in t["experts"] if e.pk not in panel),
             reads=list(Read.objects.filter(case=case).select_related("reader__user", "arm")))
    return t


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(type(user).objects.get(pk=user.pk))
    return api


def _page_rows(user, t) -> list[tuple[str, str]]:
    c = Client()
    c.force_login(user)
    html = c.get(reverse("enrolment:case", args=[t["trial"].code, t["case"].pk])).content.decode()
    return re.findall(r'<tr data-rating-status="([^"]+)"><td>([^<]*)</td>', html)


def _overview(user, t):
    return _api(user).get(reverse("case-overview", args=[t["trial"].code, t["case"].pk]))


def _never(t) -> list[str]:
    """What a blinded coordinator must not receive from the case API before lock."""
    arms = t["arms"]
    return [arms["ai_assisted"].code, arms["unassisted"].code, arms["ai_assisted"].name, arms["unassisted"].name,
            arm_model_version(arms["ai_assisted"]).name, SENTINEL, "/amend/",
            *[r.reader.user.username for r in t["reads"]], *[r.public_id for r in t["reads"]],
            *[task.public_id for task in t["tasks"]]]


def test_unblinded_coordinator_gets_the_pages_rating_rows_with_their_amendment_links(rated):
    t = rated
    got = _overview(t["coordinator"], t)
    assert got.status_code == 200
    rows = got.json()["rating_tasks"]
    assert [(r["status"], r["expert"]) for r in rows] == _page_rows(t["coordinator"], t)
    assert [r["expert"] for r in rows] == [task.expert.user.username for task in t["tasks"]]
    assert all(set(r) == ROW_KEYS and r["status"] == "done" and r["submitted_at"] for r in rows)
    assert [r["amend_url"] for r in rows] == [reverse("rating:amend", args=[t["trial"].code, task.public_id])
                                              for task in t["tasks"]]
    reads = got.json()["reads"]
    assert {r["amend_url"] for r in reads} == {reverse("reading:amend", args=[t["trial"].code, r.public_id])
                                               for r in t["reads"]}
    assert SENTINEL not in got.content.decode()  # status, never answers
    assert got.json()["ratings"] == {"total": 2, "done": 2}


@pytest.mark.parametrize("who", ["panel expert", "expert off the panel", "reader"])
def test_blinded_coordinator_gets_the_rows_and_nothing_that_unblinds(rated, who):
    """An expert or reader who is also coordinator: the same rows as their page (the experts named, as there), but
    no arm, draft, reader, read or task id, answer or amendment link, their own task included."""
    t = rated
    user = {"panel expert": t["tasks"][0].expert.user, "expert off the panel": t["outside"].user,
            "reader": t["reads"][0].reader.user}[who]
    Membership.objects.create(user=user, trial=t["trial"], role="coordinator")
    got = _overview(user, t)
    assert got.status_code == 200, got.content
    body = got.content.decode()
    leaked = [s for s in _never(t) if s in body]
    assert not leaked, leaked
    data = got.json()
    assert data["arm"] is None and data["arm_hidden"] and data["drafts"] == []
    assert all(r["arm"] is None and r["reader"] == "hidden" and r["amend_url"] is None for r in data["reads"])
    rows = data["rating_tasks"]
    assert all(set(r) == ROW_KEYS and r["amend_url"] is None for r in rows)
    assert [(r["status"], r["expert"]) for r in rows] == _page_rows(user, t)
    assert [r["expert"] for r in rows] == [task.expert.user.username for task in t["tasks"]]


def test_experts_readers_and_statisticians_without_the_coordinator_role_get_nothing(rated):
    t = rated
    others = [task.expert.user.username for task in t["tasks"]]
    for user in (t["tasks"][0].expert.user, t["outside"].user, t["reads"][0].reader.user, t["statistician"].user):
        got = _overview(user, t)
        assert got.status_code == 403
        body = got.content.decode()
        assert not any(name in body for name in others if name != user.username)
        assert "rating_tasks" not in body


def test_after_lock_the_blinded_coordinator_sees_arms_but_no_amendment_link(rated):
    t = rated
    user = t["tasks"][0].expert.user
    Membership.objects.create(user=user, trial=t["trial"], role="coordinator")
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    assert Trial.objects.get(pk=t["trial"].pk).is_locked
    data = _overview(user, t).json()
    assert not data["arm_hidden"] and {r["arm"] for r in data["reads"]} == {"ai_assisted", "unassisted"}
    assert len(data["rating_tasks"]) == 2 and all(r["amend_url"] is None for r in data["rating_tasks"])
    assert SENTINEL not in str(data)
