"""Access and account events are on the audit record (issue 18 item 1): logins, logouts, failed logins, lockouts
and site-level rights in the site's chain; trial roles granted and removed in the trial's chains."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.factories.trial import PASSWORD, UserFactory, make_trial
from trial import audit, services
from trial.models import AuditEntry, Membership

pytestmark = pytest.mark.django_db


def _site(action: str):
    return AuditEntry.objects.filter(chain="global", action=action).order_by("sequence")


@pytest.mark.requirement("AUD-5")
def test_login_and_logout_are_recorded_with_the_address():
    user = UserFactory(username="alice")
    c = Client(REMOTE_ADDR="10.1.2.3")
    assert c.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code == 302
    login = _site("auth:login").get()
    assert (login.actor_id, login.object_id, login.after) == (user.pk, str(user.pk), {"ip": "10.1.2.3"})
    c.post(reverse("logout"))
    logout = _site("auth:logout").get()
    assert logout.actor_id == user.pk and logout.sequence > login.sequence
    assert audit.verify_chain("global") is None


@pytest.mark.requirement("AUD-5")
def test_failed_login_is_recorded_without_the_password():
    UserFactory(username="bob")
    Client(REMOTE_ADDR="10.9.9.9").post(reverse("login"), {"username": "bob", "password": "s3cret-guess"})
    failed = _site("auth:login_failed").get()
    assert failed.actor_id is None and failed.after == {"username": "bob", "ip": "10.9.9.9"}
    stored = str(AuditEntry.objects.filter(chain="global").values_list("before", "after", "reason"))
    assert "s3cret-guess" not in stored
    assert not _site("auth:login").exists()


@pytest.mark.requirement("AUD-5", "ACC-2")
def test_lockout_is_recorded(settings):
    settings.AXES_ENABLED = True
    UserFactory(username="carol")
    c = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        c.post(reverse("login"), {"username": "carol", "password": f"wrong-{i}"})
    assert _site("auth:login_failed").count() == settings.AXES_FAILURE_LIMIT
    lockout = _site("auth:lockout").get()
    assert lockout.object_id == "carol" and lockout.after["username"] == "carol"
    call_command("verify_audit")


@pytest.mark.requirement("AUD-6")
def test_site_rights_changes_are_recorded_with_the_admin_who_made_them():
    user = UserFactory(username="dave")
    created = _site("auth:create_user").get(object_id=str(user.pk))
    assert created.after["username"] == "dave" and created.after["is_superuser"] is False

    perm = Permission.objects.get(codename="add_trial")
    user.user_permissions.add(perm)
    grant = _site("auth:grant").get()
    assert (grant.object_id, grant.after) == (str(user.pk), {"permissions": ["trial.add_trial"]})
    group = Group.objects.create(name="monitors")
    user.groups.add(group)
    user.user_permissions.remove(perm)
    assert [e.after for e in _site("auth:revoke")] == [{"permissions": ["trial.add_trial"]}]
    user.groups.clear()
    assert _site("auth:revoke").last().after == {"groups": ["monitors"]}

    # Made superuser through the admin: attributed to the superuser who did it (core.middleware.RequestUserMiddleware)
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    c = Client()
    c.force_login(admin)
    r = c.post(reverse("admin:auth_user_change", args=[user.pk]), {
        "username": "dave", "is_active": "on", "is_staff": "on", "is_superuser": "on",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    })
    assert r.status_code == 302, r.content.decode()[:2000]
    rights = _site("auth:rights").get()
    assert rights.actor_id == admin.pk and rights.object_id == str(user.pk)
    assert rights.before == {"is_superuser": False, "is_staff": False, "is_active": True}
    assert rights.after == {"is_superuser": True, "is_staff": True, "is_active": True}
    call_command("verify_audit")


@pytest.mark.requirement("AUD-6", "AUD-4")
def test_trial_roles_granted_and_removed_are_in_the_trials_chain():
    t = make_trial(code="ACC")
    trial, coord = t["trial"], t["coordinator"]
    stat = UserFactory(username="erin")
    m = services.add_member(coord, trial, user=stat, role=Membership.Role.STATISTICIAN)
    grant = AuditEntry.objects.get(trial=trial, action="create", object_type="trial.Membership", object_id=str(m.pk))
    assert grant.actor_id == coord.pk and grant.after["role"] == "statistician" and grant.after["user_id"] == stat.pk
    pk = m.pk
    services.remove_member(coord, m, reason="left the study team")
    removal = AuditEntry.objects.get(trial=trial, action="delete", object_type="trial.Membership",
                                     object_id=str(pk))
    assert removal.before["role"] == "statistician" and removal.reason == "left the study team"
    assert removal.chain == audit.chain_name(trial, coord)
    call_command("verify_audit")
