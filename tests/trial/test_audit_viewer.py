"""The audit viewer and the access review (issue 18 items 4 and 5): filters, detail with old/new values and
reason, CSV export with each entry's hash, the verify button, and the access review with its export. Blinding:
tests/security/test_blinding_attacks.py; who may open each page: tests/security/test_permission_matrix.py."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories.trial import PASSWORD, UserFactory, make_trial
from trial import audit, services
from trial.models import AuditEntry, Membership
from trial.views_audit import ACCESS_CSV_HEADER, AUDIT_CSV_HEADER

pytestmark = pytest.mark.django_db


@pytest.fixture
def t():
    t = make_trial(code="AV")
    services.update_trial_settings(t["coordinator"], t["trial"], reason="protocol amendment 2: shorter washout",
                                   washout_days=14)
    c = Client()
    assert c.login(username=t["coordinator"].username, password=PASSWORD)
    t["client"] = c
    return t


def _rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.requirement("AUD-7")
def test_filters_narrow_the_log(t):
    c, code, coord = t["client"], t["trial"].code, t["coordinator"]
    for i in range(45):  # more than a page
        services.add_case(coord, t["trial"], center=t["centers"][0], code=f"extra{i}")
    url = reverse("trial:audit", args=[code])
    everything = c.get(url)
    assert everything.status_code == 200
    total = everything.context["entries"].paginator.count
    assert total == AuditEntry.objects.filter(trial=t["trial"]).exclude(action=audit.CHAIN_OPEN).count() > 50
    assert everything.context["entries"].has_next()  # paginated: 50 a page
    assert len(c.get(url, {"page": 2}).context["entries"].object_list) == min(50, total - 50)

    creates = c.get(url, {"action": "create"})
    assert creates.context["entries"].paginator.count > 50
    assert "action=create&amp;page=2" in creates.content.decode()  # the pager keeps the filter
    arms = c.get(url, {"object_type": "trial.Arm", "action": "create"}).context["entries"]
    assert {(e.object_type, e.action) for e in arms} == {("trial.Arm", "create")} and arms.paginator.count == 2
    mine = c.get(url, {"person": str(coord.pk)}).context["entries"]
    assert mine.paginator.count > 0 and {e.actor_id for e in mine.paginator.object_list} == {coord.pk}
    today = timezone.now().date()
    assert c.get(url, {"since": today.isoformat(), "until": today.isoformat()}).context[
        "entries"].paginator.count == total
    assert c.get(url, {"since": (today + dt.timedelta(days=1)).isoformat()}).context["entries"].paginator.count == 0
    bad = c.get(url, {"since": today.isoformat(), "until": (today - dt.timedelta(days=2)).isoformat()})
    assert "ends before it starts" in bad.content.decode()
    # A person or action that is not in the log is not a filter (the form refuses it; the log shows everything).
    assert c.get(url, {"action": "no-such"}).context["entries"].paginator.count == total


@pytest.mark.requirement("AUD-4", "AUD-7")
def test_detail_shows_old_and_new_values_and_the_reason(t):
    entry = AuditEntry.objects.get(trial=t["trial"], action="update", object_type="trial.Trial")
    r = t["client"].get(reverse("trial:audit_entry", args=[t["trial"].code, entry.pk]))
    assert r.status_code == 200
    changes = {c.field: (c.old, c.new) for c in r.context["changes"]}
    assert changes == {"washout_days": (28, 14)}  # only the field that changed
    html = r.content.decode()
    assert "protocol amendment 2: shorter washout" in html and entry.hash in html and "matches the content" in html
    assert "secret" not in changes and t["trial"].secret not in html
    # Another trial's entry is not found from this trial's page.
    other = make_trial(code="AV2", experts=1, centers=1, seed="av2")
    foreign = AuditEntry.objects.filter(trial=other["trial"]).first()
    assert t["client"].get(reverse("trial:audit_entry", args=[t["trial"].code, foreign.pk])).status_code == 404


def test_detail_says_when_an_entry_no_longer_matches_its_hash(t):
    entry = AuditEntry.objects.get(trial=t["trial"], action="update", object_type="trial.Trial")
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_auditentry SET reason = %s WHERE id = %s", ["nothing happened", entry.pk])
    html = t["client"].get(reverse("trial:audit_entry", args=[t["trial"].code, entry.pk])).content.decode()
    assert 'id="hash-mismatch"' in html


@pytest.mark.requirement("AUD-7")
def test_csv_export_has_every_filtered_entry_with_its_hash(t):
    c, code = t["client"], t["trial"].code
    rows = _rows(c.get(reverse("trial:audit_export", args=[code])))
    assert list(rows[0]) == AUDIT_CSV_HEADER
    db = {e.pk: e for e in AuditEntry.objects.filter(trial=t["trial"]).exclude(action=audit.CHAIN_OPEN)}
    assert {int(r["id"]) for r in rows} == set(db)
    for r in rows:
        e = db[int(r["id"])]
        assert (r["hash"], r["prev_hash"], r["chain"], int(r["sequence"])) == (e.hash, e.prev_hash, e.chain, e.sequence)
    update = next(r for r in rows if r["action"] == "update")
    assert update["reason"] == "protocol amendment 2: shorter washout" and '"washout_days": 14' in update["after"]
    filtered = _rows(c.get(reverse("trial:audit_export", args=[code]), {"object_type": "trial.Center"}))
    assert {r["object_type"] for r in filtered} == {"trial.Center"} and len(filtered) == 2


def test_csv_export_cells_are_not_formulas(t):
    m = Membership.objects.filter(trial=t["trial"], role="statistician").first()
    services.remove_member(t["coordinator"], m, reason="=HYPERLINK(\"http://x\")")
    rows = _rows(t["client"].get(reverse("trial:audit_export", args=[t["trial"].code]), {"action": "delete"}))
    assert rows[0]["reason"] == "'=HYPERLINK(\"http://x\")"


@pytest.mark.requirement("AUD-7", "AUD-2")
def test_verify_button_runs_the_verify_audit_check(t):
    c, code = t["client"], t["trial"].code
    assert c.get(reverse("trial:audit_verify", args=[code])).status_code == 405
    r = c.post(reverse("trial:audit_verify", args=[code]))
    n = AuditEntry.objects.count()
    assert r.status_code == 200 and r.context["check"].intact
    assert f"Audit log intact: {n} entries verified." in r.content.decode()

    victim = AuditEntry.objects.get(trial=t["trial"], action="update", object_type="trial.Trial")
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_auditentry SET reason = %s WHERE id = %s", ["tampered", victim.pk])
    r = c.post(reverse("trial:audit_verify", args=[code]))
    assert not r.context["check"].intact
    assert f"entry #{victim.sequence} (id {victim.pk}): content does not match its hash" in r.content.decode()


def test_verify_button_does_not_name_a_broken_link_in_another_trial(t):
    other = make_trial(code="AV3", experts=1, centers=1, seed="av3")
    victim = AuditEntry.objects.filter(trial=other["trial"]).order_by("pk")[1]
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_auditentry SET reason = %s WHERE id = %s", ["tampered", victim.pk])
    html = t["client"].post(reverse("trial:audit_verify", args=[t["trial"].code])).content.decode()
    assert "broken" in html and "outside this trial" in html and victim.chain not in html


@pytest.mark.requirement("ACC-3", "AUD-6")
def test_access_review_lists_grants_removals_and_last_login(t):
    c, trial, coord = t["client"], t["trial"], t["coordinator"]
    stat = UserFactory(username="av-extra-stat", first_name="Sam", last_name="Stat")
    m = services.add_member(coord, trial, user=stat, role="statistician")
    assert Client().login(username="av-extra-stat", password=PASSWORD)  # sets last_login
    services.remove_member(coord, m, reason="moved to another study")
    r = c.get(reverse("trial:access_review", args=[trial.code]))
    assert r.status_code == 200
    rows = [row for row in r.context["rows"] if row.username == "av-extra-stat"]
    assert len(rows) == 1
    row = rows[0]
    assert (row.role, row.granted_by, row.removed_by, row.removal_reason) == (
        "statistician", coord.username, coord.username, "moved to another study")
    assert row.name == "Sam Stat" and row.last_login is not None and row.removed_at > row.granted_at
    current = {(x.username, x.role) for x in r.context["rows"] if x.removed_at is None}
    assert current == set(Membership.objects.filter(trial=trial).values_list("user__username", "role"))
    csv_rows = _rows(c.get(reverse("trial:access_review_export", args=[trial.code])))
    assert list(csv_rows[0]) == ACCESS_CSV_HEADER and len(csv_rows) == len(r.context["rows"])
    removed = next(x for x in csv_rows if x["username"] == "av-extra-stat")
    assert removed["removal_reason"] == "moved to another study" and removed["last_login_utc"]
    html = r.content.decode()
    for arm in trial.arms.all():  # an access review names no reader's arm
        assert f">{arm.code}<" not in html and f">{arm.name}<" not in html


@pytest.mark.requirement("AUD-4")
def test_a_setting_changed_after_enrolment_started_needs_a_reason(t):
    from core.errors import InvalidInput

    assert t["trial"].status != "setup"
    before = AuditEntry.objects.count()
    with pytest.raises(InvalidInput, match="needs a reason"):
        services.update_trial_settings(t["coordinator"], t["trial"], washout_days=7)
    with pytest.raises(InvalidInput, match="needs a reason"):
        services.update_trial_settings(t["coordinator"], t["trial"], reason="   ", washout_days=7)
    assert AuditEntry.objects.count() == before
    t["trial"].refresh_from_db()
    assert t["trial"].washout_days == 14
