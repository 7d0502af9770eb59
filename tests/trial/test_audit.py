import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests.factories import make_trial
from trial import audit, services
from trial.models import AuditEntry


@pytest.fixture
def t(db):
    return make_trial(code="AUD")


def test_every_setup_change_is_on_record(t):
    trial = t["trial"]
    actions = list(AuditEntry.objects.filter(trial=trial).values_list("action", "object_type"))
    assert ("create", "trial.Trial") in actions
    assert ("create", "trial.Center") in actions
    assert ("create", "trial.Arm") in actions
    assert ("create", "trial.Membership") in actions
    assert ("allocation_list:generate", "trial.AllocationList") in actions
    assert ("enrol", "trial.Membership") in actions
    gen = AuditEntry.objects.get(trial=trial, action="allocation_list:generate")
    assert trial.allocation_list.seed not in str(gen.after)  # the seed stays sealed


def test_intact_chain_verifies(t, capsys):
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out


def test_edited_row_is_detected(t):
    victim = AuditEntry.objects.filter(trial=t["trial"]).order_by("sequence")[3]
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_auditentry SET reason = %s WHERE id = %s", ["tampered", victim.pk])
    with pytest.raises(CommandError, match=rf"entry #{victim.sequence} .*edited"):
        call_command("verify_audit")


def test_deleted_row_is_detected(t):
    victim = AuditEntry.objects.filter(trial=t["trial"]).order_by("sequence")[2]
    with connection.cursor() as cur:
        cur.execute("DELETE FROM trial_auditentry WHERE id = %s", [victim.pk])
    broken = audit.verify_chain(victim.chain)
    assert broken is not None and broken.sequence == victim.sequence and "missing" in broken.problem


def test_truncated_tail_is_detected(t):
    last = AuditEntry.objects.filter(trial=t["trial"]).order_by("-sequence").first()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM trial_auditentry WHERE id = %s", [last.pk])
    assert "truncated" in audit.verify_chain(last.chain).problem


def test_entries_are_append_only(t):
    e = AuditEntry.objects.filter(trial=t["trial"]).first()
    e.reason = "x"
    with pytest.raises(PermissionError):
        e.save()
    with pytest.raises(PermissionError):
        e.delete()


def test_change_records_before_and_after_with_reason(t):
    services.update_trial_settings(t["coordinator"], t["trial"], reason="protocol amendment 2", washout_days=14)
    e = AuditEntry.objects.filter(trial=t["trial"], action="update").latest("sequence")
    assert e.before["washout_days"] == 28 and e.after["washout_days"] == 14
    assert e.reason == "protocol amendment 2" and e.actor_name == t["coordinator"].username
