"""One person, one side (issue 14; docs/design.md section 5): within a trial an expert holds no other role, and a reader
is not also statistician or coordinator. Before issue 14 only reader + expert was refused: an expert who was also
statistician found its own tasks' A/B arms in the export, and an unassisted reader who was also statistician got
the model's probabilities for cases still on their worklist. The rule lives in trial.permissions.role_conflict and
is enforced by trial.services.add_member, which the pages, the API and setup_trial all use (the admin is
read-only: test_admin_readonly.py)."""
from __future__ import annotations

import importlib
import json
from itertools import permutations

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories.trial import PASSWORD, UserFactory, make_trial
from trial import services
from trial.models import Membership, Trial

pytestmark = pytest.mark.django_db

FORBIDDEN = sorted({tuple(p) for pair in [("expert", "reader"), ("expert", "coordinator"), ("expert", "statistician"),
                                          ("reader", "statistician"), ("reader", "coordinator")]
                    for p in permutations(pair)})
WHY = {"expert": "an expert holds no other role", "reader": "a reader is not also statistician or coordinator"}


def _why(first: str, second: str) -> str:
    return WHY["expert"] if "expert" in (first, second) else WHY["reader"]


@pytest.fixture
def t(db):
    return make_trial(code="ROLE", status=Trial.Status.SETUP)


def _add(t, user, role):
    center = t["centers"][0] if role == "reader" else None
    return services.add_member(t["coordinator"], t["trial"], user=user, role=role, center=center,
                               experience="junior" if role == "reader" else "")


@pytest.mark.parametrize("first,second", FORBIDDEN, ids=lambda r: r)
def test_forbidden_combination_refused_by_the_service(t, first, second):
    user = UserFactory(username=f"svc-{first}-{second}")
    _add(t, user, first)
    with pytest.raises(services.Conflict) as err:
        _add(t, user, second)
    assert _why(first, second) in err.value.message
    assert f"both {'an' if first[0] in 'aeiou' else 'a'} {first} and" in err.value.message
    assert set(Membership.objects.filter(trial=t["trial"], user=user).values_list("role", flat=True)) == {first}


@pytest.mark.parametrize("first,second", FORBIDDEN, ids=lambda r: r)
def test_forbidden_combination_refused_by_the_api(t, first, second):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    name = f"api-{first}-{second}"
    url = reverse("member-list", args=[t["trial"].code])

    def body(role):
        reader_fields = {"center": "c1", "experience": "junior"} if role == "reader" else {}
        return {"username": name, "role": role, **reader_fields}

    assert api.post(url, body(first), format="json").status_code == 201
    r = api.post(url, body(second), format="json")
    assert r.status_code == 409 and _why(first, second) in r.json()["detail"]


def test_the_coordinator_cannot_also_read_or_rate_their_trial(t, client):
    """The creator is the coordinator: the page refuses them as reader or expert, and says why."""
    assert client.login(username=t["coordinator"].username, password=PASSWORD)
    for role, extra in (("reader", {"center": t["centers"][0].pk, "experience": "junior"}), ("expert", {})):
        r = client.post(reverse("trial:member_add", args=[t["trial"].code]),
                        {"username": t["coordinator"].username, "role": role, **extra}, follow=True)
        assert _why("coordinator", role).encode() in r.content
    assert set(Membership.objects.filter(trial=t["trial"], user=t["coordinator"]).values_list("role", flat=True)) == {
        "coordinator"}


def test_setup_trial_protocol_refuses_a_statistician_who_reads(db, tmp_path):
    bad = {"code": "BADROLE", "title": "Bad", "centers": [{"code": "c1"}], "arms": [{"code": "a"}, {"code": "b"}],
           "members": [{"username": "s1", "role": "statistician"},
                       {"username": "s1", "role": "reader", "center": "c1", "experience": "junior"}]}
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(CommandError, match="a reader is not also statistician or coordinator"):
        call_command("setup_trial", str(p))
    assert not Trial.objects.filter(code="BADROLE").exists()


def test_allowed_combinations_still_work(t):
    both = UserFactory(username="coord-and-stat")
    services.add_member(t["coordinator"], t["trial"], user=both, role="coordinator")
    services.add_member(t["coordinator"], t["trial"], user=both, role="statistician")
    assert set(Membership.objects.filter(trial=t["trial"], user=both).values_list("role", flat=True)) == {
        "coordinator", "statistician"}
    # A reader of one trial is an expert of another.
    other = make_trial(code="ROLE2", status=Trial.Status.SETUP, centers=1, experts=1)
    reader = t["readers"][0].user
    services.add_member(other["coordinator"], other["trial"], user=reader, role="expert")
    assert Membership.objects.filter(trial=other["trial"], user=reader, role="expert").exists()
    # The coordinator of one trial reads in another.
    services.add_member(other["coordinator"], other["trial"], user=t["coordinator"], role="reader",
                        center=other["centers"][0], experience="senior")


def test_the_migration_reports_existing_conflicts_and_deletes_nothing(t, capsys):
    """Memberships made before the rule (written directly, as an old database holds them) are reported."""
    expert = t["experts"][0]
    stat = Membership.objects.create(user=expert.user, trial=t["trial"], role="statistician")
    n = Membership.objects.count()
    mig = importlib.import_module("trial.migrations.0007_role_conflicts")
    mig.report_role_conflicts(apps, None)
    out = capsys.readouterr().out
    assert "1 existing conflict(s)" in out
    assert f"trial ROLE: {expert.user.username} holds expert, statistician" in out
    assert WHY["expert"] in out
    assert Membership.objects.count() == n and Membership.objects.filter(pk=stat.pk).exists()
