"""Row-level history by PostgreSQL triggers (issue 18 item 1, django-pghistory): writes that bypass the services
(raw SQL, bulk updates) still leave old and new values; service writes carry who and why."""
from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.factories.trial import PASSWORD, make_trial
from trial import selectors, services
from trial.models import Case, Membership


@pytest.fixture
def t(transactional_db):
    """Committed, like production: each statement below runs in its own transaction. (Inside one transaction, a
    write made after a service's history context still carries that context: pghistory sets it per transaction.)"""
    t = make_trial(code="RH")
    t["case"] = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="rh-case-1")
    return t


def _changes(t, **filters):
    return [c for c in selectors.row_history(t["coordinator"], t["trial"])
            if all(getattr(c, k) == v for k, v in filters.items())]


@pytest.mark.requirement("AUD-1", "AUD-3")
def test_raw_sql_update_and_delete_leave_old_and_new_values(t):
    case = t["case"]
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_case SET reference_report = %s WHERE id = %s", ["edited behind our back", case.pk])
    update = _changes(t, table="trial.Case", object_id=str(case.pk), label="update")
    assert len(update) == 1 and update[0].outside_app
    assert [(f.field, f.old, f.new) for f in update[0].changes] == [
        ("reference_report", "", "edited behind our back")]

    Case.objects.filter(pk=case.pk).update(needs_review=True)  # a bulk update: no model save, no audit.record
    bulk = [c for c in _changes(t, table="trial.Case", label="update") if any(f.field == "needs_review"
                                                                              for f in c.changes)]
    assert [(f.field, f.old, f.new) for f in bulk[0].changes] == [("needs_review", False, True)]

    with connection.cursor() as cur:
        cur.execute("DELETE FROM trial_case WHERE id = %s", [case.pk])
    deleted = _changes(t, table="trial.Case", object_id=str(case.pk), label="delete")[0]
    assert {f.field: f.old for f in deleted.changes}["code"] == "rh-case-1" and deleted.outside_app
    # The history table is written by the trigger, not by our code: the row is there as it was.
    event = apps.get_model("trial", "CaseEvent").objects.filter(pgh_obj_id=case.pk, pgh_label="delete").get()
    assert event.reference_report == "edited behind our back" and event.pgh_context_id is None


@pytest.mark.requirement("AUD-4")
def test_service_writes_carry_who_and_why(t):
    coord = t["coordinator"]
    services.update_trial_settings(coord, t["trial"], reason="amendment 3", washout_days=21)
    change = _changes(t, table="trial.Trial", label="update")[0]
    assert (change.actor, change.reason, change.outside_app) == (coord.username, "amendment 3", False)
    assert [(f.field, f.old, f.new) for f in change.changes] == [("washout_days", 28, 21)]
    assert all(f.field != "secret" for c in _changes(t, table="trial.Trial") for f in c.changes)

    stat = Membership.objects.get(trial=t["trial"], role="statistician")
    services.remove_member(coord, stat, reason="left")
    removal = _changes(t, table="trial.Membership", label="delete")[0]
    assert (removal.actor, removal.reason) == (coord.username, "left")


def test_row_history_page_marks_writes_made_outside_the_application(t):
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_case SET exclusion_reason = %s WHERE id = %s", ["sneaky", t["case"].pk])
    c = Client()
    assert c.login(username=t["coordinator"].username, password=PASSWORD)
    page = c.get(reverse("trial:row_history", args=[t["trial"].code]), {"outside": "1"})
    assert page.status_code == 200
    rows = page.context["changes"].object_list
    assert rows and all(r.outside_app for r in rows)
    assert any(f.new == "sneaky" for r in rows for f in r.changes)
    assert "outside the application" in page.content.decode()
    # Writes through the page carry the person (pghistory's middleware) even without a reason.
    everything = c.get(reverse("trial:row_history", args=[t["trial"].code])).context["changes"].paginator.count
    assert everything > len(rows)
