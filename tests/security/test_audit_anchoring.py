"""Audit anchoring (issue 14; docs/design.md section 5): someone with database write access rewrites an audit entry and
recomputes every hash after it (the hash function is public), so every link checks out. Before issue 14
`verify_audit` then said "intact"; the chain heads are now signed with AUDIT_SIGNING_KEY, a key from the environment
that the database never holds, and the rewrite is found."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests.factories.trial import make_trial
from trial import audit
from trial.models import AuditEntry, AuditHead

pytestmark = pytest.mark.django_db


def _rewrite_and_rehash(entry: AuditEntry, **changes) -> None:
    """The attack: change one entry, then recompute its hash and every later hash of its chain, and the head,
    through the ORM (queryset updates: no model code runs)."""
    AuditEntry.objects.filter(pk=entry.pk).update(**changes)
    prev = entry.prev_hash
    for e in AuditEntry.objects.filter(chain=entry.chain, sequence__gte=entry.sequence).order_by("sequence"):
        e.prev_hash = prev
        new_hash = audit._entry_hash(audit._hashed_fields(e))
        AuditEntry.objects.filter(pk=e.pk).update(prev_hash=prev, hash=new_hash)
        prev = new_hash
    AuditHead.objects.filter(chain=entry.chain).update(last_hash=prev)


@pytest.fixture
def t(db):
    return make_trial(code="ANC")


@pytest.mark.requirement("AUD-2")
def test_a_rewritten_and_rehashed_chain_is_found(t, capsys):
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out
    trial = t["trial"]
    victim = AuditEntry.objects.filter(trial=trial, action="enrol").order_by("chain", "sequence").first()
    _rewrite_and_rehash(victim, reason="rewritten", after={**victim.after, "arm_id": None})
    prev = audit.GENESIS  # every sha256 link checks out...
    for e in AuditEntry.objects.filter(chain=victim.chain).order_by("sequence"):
        assert e.prev_hash == prev and audit._entry_hash(audit._hashed_fields(e)) == e.hash
        prev = e.hash
    assert AuditEntry.objects.get(pk=victim.pk).reason == "rewritten"
    with pytest.raises(CommandError, match=rf"chain {victim.chain}: chain head signature does not verify"):
        call_command("verify_audit")  # ...but the signed head does not


@pytest.mark.requirement("AUD-2")
def test_the_signature_is_not_forgeable_from_the_database(t, settings):
    """Nothing in the database gives the key: a head signed with any other key (e.g. SECRET_KEY) is refused."""
    head = AuditHead.objects.filter(trial=t["trial"], count__gt=0).first()
    assert settings.AUDIT_SIGNING_KEY != settings.SECRET_KEY
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM trial_audithead WHERE signature = %s", [head.signature])
        assert cur.fetchone()[0] == 1
        for table in ("trial_audithead", "trial_auditentry"):
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE CAST({table}.* AS text) LIKE %s",  # noqa: S608
                        [f"%{settings.AUDIT_SIGNING_KEY}%"])
            assert cur.fetchone()[0] == 0, f"the signing key is stored in {table}"
    forged = audit.head_signature(head.chain, head.count, head.last_hash, key=settings.SECRET_KEY)
    AuditHead.objects.filter(pk=head.pk).update(signature=forged)
    broken = audit.verify_chain(head.chain)
    assert broken is not None and "signature does not verify" in broken.problem


def test_an_unsigned_head_is_reported_clearly(t):
    head = AuditHead.objects.filter(trial=t["trial"], count__gt=0).first()
    AuditHead.objects.filter(pk=head.pk).update(signature="")
    with pytest.raises(CommandError, match=rf"chain {head.chain}: chain head is not signed"):
        call_command("verify_audit")


def test_another_key_in_the_environment_fails_verification(t, settings):
    """Verification uses the key of the running environment: a database moved to a server with another key (or an
    attacker's own key) does not verify."""
    settings.AUDIT_SIGNING_KEY = "another-key-" + "x" * 40
    with pytest.raises(CommandError, match="signature does not verify"):
        call_command("verify_audit")


def test_the_migration_signs_existing_heads(t):
    """Chains made before signing existed: migration 0006_audit_signature signs their heads."""
    import importlib

    from django.apps import apps

    mig = importlib.import_module("trial.migrations.0006_audit_signature")
    AuditHead.objects.filter(trial=t["trial"]).update(signature="")
    mig.sign_existing_heads(apps, None)
    assert not AuditHead.objects.filter(signature="").exists()
    assert audit.verify_all()[1] is None
