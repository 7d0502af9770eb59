import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests.factories.trial import make_trial
from trial import audit, services
from trial.models import AuditEntry


@pytest.fixture
def t(db):
    return make_trial(code="AUD")


@pytest.mark.requirement("AUD-1")
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


@pytest.mark.requirement("AUD-2")
def test_edited_row_is_detected(t):
    victim = AuditEntry.objects.filter(trial=t["trial"]).order_by("sequence")[3]
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_auditentry SET reason = %s WHERE id = %s", ["tampered", victim.pk])
    with pytest.raises(CommandError, match=rf"entry #{victim.sequence} .*edited"):
        call_command("verify_audit")


@pytest.mark.requirement("AUD-2")
def test_deleted_row_is_detected(t):
    victim = AuditEntry.objects.filter(trial=t["trial"]).order_by("sequence")[2]
    with connection.cursor() as cur:
        cur.execute("DELETE FROM trial_auditentry WHERE id = %s", [victim.pk])
    broken = audit.verify_chain(victim.chain)
    assert broken is not None and broken.sequence == victim.sequence and "missing" in broken.problem


@pytest.mark.requirement("AUD-2")
def test_truncated_tail_is_detected(t):
    last = AuditEntry.objects.filter(trial=t["trial"]).order_by("-sequence").first()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM trial_auditentry WHERE id = %s", [last.pk])
    assert "truncated" in audit.verify_chain(last.chain).problem


@pytest.mark.requirement("AUD-3")
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


def test_each_actor_writes_to_own_chain_registered_in_the_trials_chain(t):
    trial = t["trial"]
    # Every member's chain is made and registered when they join (not inside their first open or submit).
    from trial.models import AuditHead

    for m in [*t["readers"], *t["experts"], t["statistician"]]:
        assert AuditHead.objects.filter(chain=audit.chain_name(trial, m.user), count=0).exists()
    reader_a, reader_b = (m.user for m in t["readers"][:2])
    a = audit.record(actor=reader_a, trial=trial, action="note", object_type="x", object_id="1")
    b = audit.record(actor=reader_b, trial=trial, action="note", object_type="x", object_id="2")
    system = audit.record(actor=None, trial=trial, action="note", object_type="x", object_id="3")
    assert a.chain == f"trial:{trial.pk}:user:{reader_a.pk}" and a.sequence == 1
    assert b.chain == f"trial:{trial.pk}:user:{reader_b.pk}" and b.sequence == 1
    assert system.chain == f"trial:{trial.pk}"
    registry = set(AuditEntry.objects.filter(chain=f"trial:{trial.pk}", action=audit.CHAIN_OPEN)
                   .values_list("object_id", flat=True))
    assert {a.chain, b.chain} <= registry
    assert audit.verify_all()[1] is None
    # The registry is bookkeeping: the coordinator's audit page lists changes only.
    from trial import selectors

    listed = list(selectors.audit_entries(t["coordinator"], trial))
    assert audit.CHAIN_OPEN not in {e.action for e in listed}
    assert listed[0].pk == system.pk  # newest first across chains


def test_a_whole_actor_chain_deleted_is_detected(t):
    trial = t["trial"]
    reader = t["readers"][0].user
    entry = audit.record(actor=reader, trial=trial, action="note", object_type="x", object_id="1")
    with connection.cursor() as cur:
        cur.execute("DELETE FROM trial_auditentry WHERE chain = %s", [entry.chain])
        cur.execute("DELETE FROM trial_audithead WHERE chain = %s", [entry.chain])
    with pytest.raises(CommandError, match=rf"{entry.chain}.*no head \(deleted\)"):
        call_command("verify_audit")


def test_an_unregistered_actor_chain_is_detected(t):
    from tests.factories.trial import UserFactory

    trial = t["trial"]
    outsider = UserFactory(username="not-a-member")  # no membership: the chain is opened at the first change
    entry = audit.record(actor=outsider, trial=trial, action="note", object_type="x", object_id="1")
    with connection.cursor() as cur:  # drop the registry entry: the trial chain's tail, so truncate its head too
        opened = AuditEntry.objects.get(action=audit.CHAIN_OPEN, object_id=entry.chain)
        cur.execute("DELETE FROM trial_auditentry WHERE id = %s", [opened.pk])
        cur.execute("UPDATE trial_audithead SET count = count - 1, last_hash = %s WHERE chain = %s",
                    [opened.prev_hash, opened.chain])
    assert "signature does not verify" in audit.verify_chain(opened.chain).problem  # the signed head catches it
    from trial.models import AuditHead

    head = AuditHead.objects.get(chain=opened.chain)  # even someone holding the signing key...
    audit.sign_head(head)
    head.save(update_fields=["signature"])
    assert audit.verify_chain(opened.chain) is None  # ...gets a trial chain that alone looks intact...
    count, broken = audit.verify_all()
    assert broken is not None and broken.chain == entry.chain and "not registered" in broken.problem


@pytest.mark.django_db(transaction=True)
def test_concurrent_actors_append_without_breaking_any_chain():
    """8 threads, 4 actors (two threads each, racing to open the same chain), 25 entries per thread."""
    import threading

    from django.db import connections, transaction

    assert connection.vendor == "postgresql", "row locks are only meaningful on PostgreSQL"
    t = make_trial(code="AUDC", readers_per_arm_per_center=1)
    trial = t["trial"]
    actors = [m.user for m in t["readers"][:4]]
    errors: list[Exception] = []

    def worker(user, n):
        try:
            for i in range(n):
                with transaction.atomic():
                    audit.record(actor=user, trial=trial, action="note", object_type="x", object_id=str(i))
                    audit.record(actor=None, trial=trial, action="note", object_type="y", object_id=str(i))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(actors[i % 4], 25)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    for user in actors:
        chain = audit.chain_name(trial, user)
        assert AuditEntry.objects.filter(chain=chain).count() == 50
        assert AuditEntry.objects.filter(action=audit.CHAIN_OPEN, object_id=chain).count() == 1
    assert AuditEntry.objects.filter(chain=audit.chain_name(trial), object_type="y").count() == 200
    assert audit.verify_all()[1] is None


def test_record_many_appends_in_order_as_single_records_would(t):
    """record_many (a completing submit's tasks and case status, one head lock): the entries follow the chain's
    head in order, hash the same way as record's (verify_chain recomputes each), and the head is signed."""
    trial = t["trial"]
    center, arm = t["centers"][0], t["arms"]["unassisted"]
    head_before = audit.AuditHead.objects.get(chain=audit.chain_name(trial))
    made = audit.record_many(actor=None, trial=trial, changes=[
        audit.Change("demo:first", obj=center, after={"n": 1}),
        audit.Change("demo:second", obj=arm, before={"n": 1}, after={"n": 2}, reason="why"),
    ])
    assert [e.sequence for e in made] == [head_before.count + 1, head_before.count + 2]
    assert made[0].prev_hash == head_before.last_hash and made[1].prev_hash == made[0].hash
    stored = list(AuditEntry.objects.filter(chain=audit.chain_name(trial)).order_by("-sequence")[:2])[::-1]
    assert [(e.action, e.object_type, e.object_id, e.reason) for e in stored] == [
        ("demo:first", "trial.Center", str(center.pk), ""), ("demo:second", "trial.Arm", str(arm.pk), "why")]
    assert all(audit.entry_hash_ok(e) for e in stored)
    assert audit.verify_chain(audit.chain_name(trial)) is None
    assert audit.record_many(actor=None, trial=trial, changes=[]) == []
