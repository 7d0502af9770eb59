"""The admin is read-only for trial data (issue 14): before, a superuser could add cases and memberships to a locked
trial in the admin, unaudited. Superusers may still look; every write goes through the audited services."""
from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from tests.factories.trial import PASSWORD, UserFactory, add_cases, make_trial
from trial import services
from trial.models import AuditEntry, Case, Membership, Trial

pytestmark = pytest.mark.django_db

TRIAL_DATA = [("trial", "trial"), ("trial", "center"), ("trial", "arm"), ("trial", "membership"), ("trial", "case"),
              ("trial", "auditentry"), ("inference", "draft"), ("inference", "modelversion")]


@pytest.fixture
def locked(db, client):
    t = make_trial(code="ADM", status=Trial.Status.READING)
    add_cases(t, 2)
    services.lock_trial(t["coordinator"], t["trial"], reason="end of trial")
    root = UserFactory(username="adm-root", is_superuser=True, is_staff=True)
    assert client.login(username=root.username, password=PASSWORD)
    return t


def test_every_trial_data_model_is_view_only_for_superusers(locked, client, rf):
    request = rf.get(reverse("admin:index"))
    request.user = UserFactory(username="adm-root")
    for model, model_admin in site._registry.items():
        key = (model._meta.app_label, model._meta.model_name)
        if key not in TRIAL_DATA:
            continue
        assert model_admin.has_view_permission(request), key
        assert not model_admin.has_add_permission(request), key
        assert not model_admin.has_change_permission(request), key
        assert not model_admin.has_delete_permission(request), key
    registered = {(m._meta.app_label, m._meta.model_name) for m in site._registry}
    assert set(TRIAL_DATA) <= registered
    assert ("trial", "allocationlist") not in registered and ("trial", "allocationslot") not in registered


def test_a_superuser_cannot_add_a_case_or_membership_to_a_locked_trial(locked, client):
    trial = locked["trial"]
    cases, members, entries = Case.objects.count(), Membership.objects.count(), AuditEntry.objects.count()
    assert client.get(reverse("admin:trial_case_add")).status_code == 403
    r = client.post(reverse("admin:trial_case_add"),
                    {"trial": trial.pk, "center": locked["centers"][0].pk, "code": "ADMIN-CASE", "status": "enrolled",
                     "reference_findings": "{}"})
    assert r.status_code == 403
    r = client.post(reverse("admin:trial_membership_add"),
                    {"user": locked["coordinator"].pk, "trial": trial.pk, "role": "expert"})
    assert r.status_code == 403
    assert (Case.objects.count(), Membership.objects.count(), AuditEntry.objects.count()) == (cases, members, entries)


def test_a_superuser_cannot_change_or_delete_trial_data(locked, client):
    case = locked["trial"].cases.order_by("pk").first()
    url = reverse("admin:trial_case_change", args=[case.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content  # a read-only view
    r = client.post(url, {"trial": case.trial_id, "center": case.center_id, "code": "RENAMED", "status": "excluded"})
    assert r.status_code == 403
    assert client.post(reverse("admin:trial_case_delete", args=[case.pk]), {"post": "yes"}).status_code == 403
    trial_url = reverse("admin:trial_trial_change", args=[locked["trial"].pk])
    assert client.post(trial_url, {"code": "HACKED", "title": "x"}).status_code == 403
    case.refresh_from_db()
    assert case.code != "RENAMED" and case.status != "excluded"
    assert Trial.objects.filter(code="ADM").exists()
    assert client.get(reverse("admin:trial_case_changelist")).status_code == 200
