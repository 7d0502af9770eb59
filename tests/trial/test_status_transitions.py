"""Status changes show what is outstanding and need a reason to leave work behind (issue 17, coordinator)."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import Conflict, ErrorCode, InvalidInput
from tests.factories.rating import complete_case, rating_trial
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial import selectors, services
from trial.models import AuditEntry, Trial

pytestmark = pytest.mark.django_db


def _codes(trial, to_status):
    return {o.code: o.count for o in selectors.outstanding_work(trial, to_status)}


def test_reading_with_unenrolled_cases_needs_a_reason_and_the_audit_lists_them():
    t = make_trial(code="ST1", status=Trial.Status.ENROLLING)
    add_cases(t, 3, enrol=False)
    coord, trial = t["coordinator"], t["trial"]
    assert _codes(trial, "reading") == {"cases_not_enrolled": 3}
    with pytest.raises(Conflict) as exc:
        services.advance_status(coord, trial, "reading")
    assert exc.value.code == ErrorCode.OUTSTANDING_WORK and "3 imported case(s) not enrolled" in exc.value.message
    assert Trial.objects.get(pk=trial.pk).status == "enrolling"

    services.advance_status(coord, trial, "reading", reason="  cases come in a second batch  ")
    entry = AuditEntry.objects.filter(trial=trial, action="status:reading").get()
    assert entry.reason == "cases come in a second batch"
    assert entry.after["outstanding"] == {"cases_not_enrolled": 3} and entry.after["status"] == "reading"


def test_nothing_outstanding_needs_no_reason():
    t = make_trial(code="ST2", status=Trial.Status.SETUP, experts=3, expert_panel_size=3, preference_majority=2)
    assert _codes(t["trial"], "enrolling") == {}
    trial = services.advance_status(t["coordinator"], t["trial"], "enrolling")
    assert trial.status == "enrolling"
    assert "outstanding" not in AuditEntry.objects.get(trial=trial, action="status:enrolling").after


def test_short_expert_panel_is_outstanding_before_enrolment():
    t = make_trial(code="ST3", status=Trial.Status.SETUP, experts=1, expert_panel_size=3, preference_majority=2)
    assert _codes(t["trial"], "enrolling") == {"experts_short": 2}


def test_lock_lists_reads_and_ratings_counted_by_the_apps_above():
    """The reads and ratings come through trial.signals.progress_requested (reading's and rating's receivers)."""
    t = rating_trial(code="ST4", experts=3, panel=2, cases=2)
    coord, trial = t["coordinator"], t["trial"]
    complete_case(t["cases"][0])  # both reads of one case: its rating tasks are made, none done
    services.advance_status(coord, trial, "rating", reason="second case read later")
    trial.refresh_from_db()
    assert _codes(trial, "locked") == {"reads_not_done": 2, "ratings_not_done": 2}
    preview = selectors.status_preview(coord, trial)
    assert preview["next_status"] == "locked" and preview["reason_required"]
    assert [o.message for o in preview["outstanding"]] == ["2 read(s) not done", "2 rating(s) not done"]
    with pytest.raises(InvalidInput):
        services.advance_status(coord, trial, "locked")
    services.advance_status(coord, trial, "locked", reason="stopped early by the steering committee")
    entry = AuditEntry.objects.get(trial=trial, action="status:locked")
    assert entry.after["outstanding"] == {"reads_not_done": 2, "ratings_not_done": 2}
    assert entry.reason == "stopped early by the steering committee"


def test_api_preview_and_refusal():
    t = make_trial(code="ST5", status=Trial.Status.ENROLLING)
    add_cases(t, 2, enrol=False)
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    url = reverse("trial-status", args=["ST5"])
    got = api.get(url).json()
    assert got == {"status": "enrolling", "next_status": "reading", "reason_required": True,
                   "signature_required": False,
                   "outstanding": [{"code": "cases_not_enrolled", "count": 2,
                                    "message": "2 imported case(s) not enrolled"}]}
    r = api.post(url, {"to_status": "reading"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "outstanding_work"
    assert "2 imported case(s) not enrolled" in r.json()["detail"]
    r = api.post(url, {"to_status": "reading", "reason": "second batch later"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "reading"
    reader = APIClient()
    reader.force_authenticate(t["readers"][0].user)
    assert reader.get(url).status_code in (403, 404)


def test_page_confirms_and_refuses_without_reason(client):
    t = make_trial(code="ST6", status=Trial.Status.ENROLLING)
    add_cases(t, 1, enrol=False)
    assert client.login(username=t["coordinator"].username, password=PASSWORD)
    url = reverse("trial:status", args=["ST6"])
    page = client.get(url).content.decode()
    assert "1 imported case(s) not enrolled" in page and 'name="reason"' in page
    r = client.post(url, {"to_status": "reading", "reason": ""})
    assert r.status_code == 302 and r["Location"] == url
    assert Trial.objects.get(code="ST6").status == "enrolling"
    r = client.post(url, {"to_status": "reading", "reason": "go"}, follow=True)
    assert Trial.objects.get(code="ST6").status == "reading"
    assert r.redirect_chain[-1][0] == reverse("trial:detail", args=["ST6"])
