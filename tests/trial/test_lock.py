"""A locked trial is read-only for everyone: services, pages and API all refuse writes."""
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import TrialLocked
from tests.factories.trial import PASSWORD, make_trial
from trial import services
from trial.models import AuditEntry, Case, Center, Trial


@pytest.fixture
def locked(db):
    t = make_trial(code="LCK")
    services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="PRE1")
    t["trial"] = services.lock_trial(t["coordinator"], t["trial"], reason="database lock for analysis")
    return t


@pytest.mark.requirement("LCK-1")
def test_lock_needs_a_reason(db):
    t = make_trial(code="LCR", status=Trial.Status.RATING)
    with pytest.raises(services.InvalidInput):
        services.advance_status(t["coordinator"], t["trial"], "locked")


@pytest.mark.requirement("LCK-1")
def test_services_refuse_writes(locked):
    coord, trial = locked["coordinator"], locked["trial"]
    case = Case.objects.get(code="PRE1")
    calls = [
        lambda: services.add_center(coord, trial, code="c9", name="x"),
        lambda: services.add_case(coord, trial, center=locked["centers"][0], code="NEW"),
        lambda: services.enrol_case(coord, case),
        lambda: services.update_trial_settings(coord, trial, washout_days=3),
        lambda: services.exclude_case(coord, case, reason="x"),
        lambda: services.advance_status(coord, trial, "setup"),
    ]
    n = AuditEntry.objects.count()
    for call in calls:
        with pytest.raises(TrialLocked):
            call()
    assert AuditEntry.objects.count() == n
    assert not Center.objects.filter(code="c9").exists()


@pytest.mark.requirement("LCK-1")
def test_pages_refuse_writes(locked, client):
    client.login(username=locked["coordinator"].username, password=PASSWORD)
    r = client.post(reverse("trial:center_add", args=[locked["trial"].code]),
                    {"code": "c9", "name": "Nine"}, follow=True)
    assert r.status_code == 200
    assert b"locked" in r.content
    assert not Center.objects.filter(code="c9").exists()


@pytest.mark.requirement("LCK-1")
def test_api_refuses_writes(locked):
    api = APIClient()
    api.force_authenticate(locked["coordinator"])
    r = api.post(reverse("center-list", args=[locked["trial"].code]),
                 {"code": "c9", "name": "Nine"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "trial_locked"
    case = Case.objects.get(code="PRE1")
    r = api.post(reverse("case-enrol", args=[locked["trial"].code, case.pk]))
    assert r.status_code == 409
    assert not Center.objects.filter(code="c9").exists()
