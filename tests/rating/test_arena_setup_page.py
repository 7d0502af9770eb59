"""The coordinator's arena page (issue 20 item 1; docs/ai-evaluation.md, "Standalone arena"): set the versions, draw
the tasks, follow progress; refused to a coordinator who also rates in the trial (trial/blinding.py)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from inference.models import ArenaModelVersion, Draft
from inference.selectors import arena_model_versions
from rating import services as rating_services
from rating.models import ArenaTask
from tests.factories.trial import PASSWORD
from tests.rating.arena_support import arena_trial
from trial.models import Membership

pytestmark = pytest.mark.django_db

ANSWER = {"preference": "tie", "quality_a": 4, "quality_b": 3, "comment": "Both fine."}


def test_coordinator_sets_versions_draws_and_follows_progress(client):
    t = arena_trial(code="AS", versions=3, cases=2, experts=2, panel=1)
    trial, v = t["trial"], t["versions"]
    url = reverse("arena:setup", args=[trial.code])
    client.login(username=t["coordinator"].username, password=PASSWORD)
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for mv in v:
        assert f'value="{mv.name}"' in html
    assert f'href="{url}" aria-current="page"' in html  # linked from the coordinator's navigation

    one = client.post(url, {"action": "versions", "model_versions": [v[0].name]})
    assert one.status_code == 400 and "Choose two or more model versions" in one.content.decode()
    assert ArenaModelVersion.objects.filter(trial=trial).count() == 3  # nothing lost
    assert client.post(url, {"action": "versions", "model_versions": [v[0].name, v[1].name]}).status_code == 302
    assert arena_model_versions(trial) == sorted(v[:2], key=lambda mv: mv.name)

    # One case's second draft fails: that case lacks a pair and the page counts the draft as left out.
    Draft.objects.filter(case=t["cases"][1], model_version=v[1]).update(status=Draft.Status.FAILED)
    bad = client.post(url, {"action": "draw", "sample_size": "0"})
    assert bad.status_code == 400 and not ArenaTask.objects.filter(case__trial=trial).exists()
    assert client.post(url, {"action": "no-such-action"}).status_code == 400
    expert = t["experts"][0]
    r = client.post(url, {"action": "draw", "experts": [expert.pk]}, follow=True)
    assert r.status_code == 200 and "Drew 1 new arena task(s) over 1 case(s)" in r.content.decode()
    tasks = list(ArenaTask.objects.filter(case__trial=trial))
    assert len(tasks) == 1 and tasks[0].expert == expert and tasks[0].case == t["cases"][0]

    rating_services.submit_arena_task(expert.user, tasks[0], ANSWER)
    ctx = client.get(url).context["arena"]
    assert (ctx["total"], ctx["done"], ctx["cases"], ctx["enrolled_cases"]) == (1, 1, 1, 2)
    assert ctx["per_expert"] == [{"expert": expert.user.username, "total": 1, "done": 1}]
    assert ctx["left_out"]["failed"] == 1 and ctx["left_out_total"] == 1
    # Nothing per version before lock: no judgement (a preference) appears beside a version's name.
    assert "tie" not in client.get(url).content.decode().lower()


def test_a_coordinator_who_also_rates_is_refused(client):
    t = arena_trial(code="AX", versions=2, cases=1, experts=1, panel=1)
    expert = t["experts"][0]
    Membership.objects.create(user=expert.user, trial=t["trial"], role="coordinator")
    client.login(username=expert.user.username, password=PASSWORD)
    url = reverse("arena:setup", args=[t["trial"].code])
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "draw"}).status_code == 403
    names = [mv.name for mv in t["versions"]]
    assert client.post(url, {"action": "versions", "model_versions": names}).status_code == 403
    assert not ArenaTask.objects.filter(case__trial=t["trial"]).exists()
    assert "secretmodel" not in client.get(url).content.decode()
