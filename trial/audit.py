"""Append-only, hash-chained audit log (docs/design.md section 5).

Each trial has one chain per actor (``trial:<id>:user:<id>``) plus the trial's own chain (``trial:<id>``, for
actions without a user and for the registry of actor chains), and there is a global chain for changes outside any
trial. Appending locks the chain's head row, so entries of one chain are strictly sequential; each entry's hash
covers its content and the previous entry's hash, so editing, deleting or reordering a past entry breaks a link
that `verify_chain` finds.

Why per actor: with one chain per trial every audited write of the trial (50 readers opening and submitting)
queued on one head row until its transaction committed (the load benchmark measured open/submit p95 at ~4x the
other endpoints). An actor's own writes are sequential anyway. A new actor chain is itself recorded in the trial's
chain (``audit:chain-open``), so deleting a whole actor chain, head and all, is still found by `verify_all`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import pghistory
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from core.compiled import CompiledQuery

from .models import AuditEntry, AuditHead, Trial

GENESIS = "0" * 64


def to_json(value: Any) -> Any:
    """Normalise to plain JSON types so the stored value hashes the same after a database round trip."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))


def snapshot(obj: models.Model | None, exclude: tuple[str, ...] = ()) -> dict | None:
    if obj is None:
        return None
    data = {}
    for field in obj._meta.concrete_fields:
        if field.name in exclude or field.name == "secret":
            continue
        data[field.attname] = field.value_from_object(obj)
    return to_json(data)


def _entry_hash(fields: dict) -> str:
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(payload.encode()).hexdigest()


def _hashed_fields(entry: AuditEntry) -> dict:
    return {
        "chain": entry.chain,
        "sequence": entry.sequence,
        "trial_id": entry.trial_id,
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "at": entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "prev_hash": entry.prev_hash,
    }


CHAIN_OPEN = "audit:chain-open"


def head_signature(chain: str, count: int, last_hash: str, key: str | None = None) -> str:
    """HMAC-SHA256 of a chain head under AUDIT_SIGNING_KEY (from the environment, never in the database): anyone
    with database access can recompute sha256 links, but not this, so a rewritten and re-hashed chain is found."""
    key = settings.AUDIT_SIGNING_KEY if key is None else key
    msg = f"cxr-trial-audit-head|{chain}|{count}|{last_hash}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()


def sign_head(head: AuditHead) -> None:
    head.signature = head_signature(head.chain, head.count, head.last_hash)


def chain_name(trial: Trial | None, actor=None) -> str:
    """The chain an entry goes to: the actor's chain within the trial, the trial's own chain when there is no
    user (system actions), or the global chain outside any trial."""
    if trial is None:
        return "global"
    actor_id = getattr(actor, "pk", None)
    return f"trial:{trial.pk}:user:{actor_id}" if actor_id else f"trial:{trial.pk}"


# Every audited write locks its chain's head: compiled once per process (core.compiled; docs/performance.md).
_HEAD = CompiledQuery(lambda *, chain: AuditHead.objects.select_for_update().filter(chain=chain).order_by("pk")[:1],
                      kind="object", params={"chain": str})


def _locked_head(trial: Trial | None, actor=None) -> AuditHead:
    name = chain_name(trial, actor)
    head = _HEAD(chain=name)
    if head is not None:
        return head
    try:
        with transaction.atomic():
            new_head = AuditHead(chain=name, trial=trial)
            sign_head(new_head)
            new_head.save()
            if name != chain_name(trial):
                # Register the new actor chain in the trial's chain (see the module docstring).
                _append(_locked_head(trial), actor=None, trial=trial, action=CHAIN_OPEN,
                        object_type="trial.AuditHead", object_id=name)
    except IntegrityError:
        pass  # created concurrently by another transaction, which registered it
    return AuditHead.objects.select_for_update().get(chain=name)


def history_context(*, actor=None, reason: str = ""):
    """Metadata (who, why) for the row-history events (trial.models.history) of the writes made inside: the
    triggers record every write, this says which service write it was. Nested in a request's context (pghistory's
    middleware: user and URL), the keys are merged. Nothing on SQLite (no triggers there, and no set_config)."""
    if connection.vendor != "postgresql":
        return contextlib.nullcontext()
    return pghistory.context(actor=getattr(actor, "pk", None), reason=reason or None)


def open_chain(trial: Trial, user) -> AuditHead:
    """Make (and register) a person's chain in the trial ahead of their first change. Called when they join the
    trial, in the coordinator's transaction: registering locks the trial's chain, and doing it later, inside a
    reader's open or submit that goes on to lock case and expert rows, could deadlock with a submit that holds those
    rows and then appends to the trial's chain (rating tasks are recorded there)."""
    return _locked_head(trial, user)


def _next_entry(head: AuditHead, *, actor, trial: Trial | None, action: str, object_type: str, object_id: str,
                before: dict | None = None, after: dict | None = None, reason: str = "") -> AuditEntry:
    """The chain's next entry, hashed onto the head, which moves on (in memory: the caller saves both)."""
    entry = AuditEntry(
        chain=head.chain,
        sequence=head.count + 1,
        trial=trial,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "username", "") or "system",
        at=timezone.now(),
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=to_json(before),
        after=to_json(after),
        reason=reason,
        prev_hash=head.last_hash,
    )
    entry.hash = _entry_hash(_hashed_fields(entry))
    head.last_hash = entry.hash
    head.count = entry.sequence
    return entry


def _save_head(head: AuditHead) -> None:
    sign_head(head)
    head.save(update_fields=["last_hash", "count", "signature"])


def _append(head: AuditHead, **fields: Any) -> AuditEntry:
    entry = _next_entry(head, **fields)
    entry.save()
    _save_head(head)
    return entry


def _target(obj: models.Model | None, object_type: str, object_id: str) -> tuple[str, str]:
    return (object_type or (obj._meta.label if obj is not None else ""),
            object_id or (str(obj.pk) if obj is not None else ""))


def record(
    *,
    actor,
    trial: Trial | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one entry. Call inside the transaction that makes the change it records."""
    object_type, object_id = _target(obj, object_type, object_id)
    # No savepoint: an entry that fails must fail the change it records (the caller's transaction), and a
    # savepoint is two more round trips on every audited write (docs/performance.md).
    with transaction.atomic(savepoint=False):
        return _append(_locked_head(trial, actor), actor=actor, trial=trial, action=action,
                       object_type=object_type, object_id=object_id, before=before, after=after, reason=reason)


@dataclass(frozen=True)
class Change:
    """One change for :func:`record_many` (the arguments of :func:`record` after actor and trial)."""

    action: str
    obj: models.Model | None = None
    before: dict | None = None
    after: dict | None = None
    reason: str = ""


def record_many(*, actor, trial: Trial | None, changes: list[Change]) -> list[AuditEntry]:
    """Append several entries to one chain, in order, under one lock of its head: one insert and one head update
    for all (a submit that completes a case records its rating tasks and the case's new status together, while
    it holds the trial's chain; docs/performance.md). The entries are the same as one :func:`record` each."""
    if not changes:
        return []
    with transaction.atomic(savepoint=False):  # as record
        head = _locked_head(trial, actor)
        entries = []
        for c in changes:
            object_type, object_id = _target(c.obj, "", "")
            entries.append(_next_entry(head, actor=actor, trial=trial, action=c.action, object_type=object_type,
                                       object_id=object_id, before=c.before, after=c.after, reason=c.reason))
        AuditEntry.objects.bulk_create(entries)
        _save_head(head)
    return entries


@dataclass
class BrokenLink:
    chain: str
    sequence: int
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        if self.sequence == 0:  # the chain as a whole (registry problems)
            return f"chain {self.chain}: {self.problem}"
        return f"chain {self.chain}, entry #{self.sequence} (id {self.entry_id}): {self.problem}"


def verify_chain(chain: str, check_signature: bool = True) -> BrokenLink | None:
    """Return the first broken link of a chain, or None when it is intact (its head signed with our key)."""
    prev = GENESIS
    expected_seq = 1
    for entry in AuditEntry.objects.filter(chain=chain).order_by("sequence").iterator(chunk_size=2000):
        if entry.sequence != expected_seq:
            return BrokenLink(chain, expected_seq, entry.pk, f"entry #{expected_seq} is missing")
        if entry.prev_hash != prev:
            return BrokenLink(chain, entry.sequence, entry.pk, "previous-hash link does not match")
        if _entry_hash(_hashed_fields(entry)) != entry.hash:
            return BrokenLink(chain, entry.sequence, entry.pk, "content does not match its hash (edited)")
        prev = entry.hash
        expected_seq += 1
    head = AuditHead.objects.filter(chain=chain).first()
    if head is not None and (head.count != expected_seq - 1 or head.last_hash != prev):
        return BrokenLink(chain, expected_seq - 1, None, "chain head does not match the last entry (truncated)")
    if head is not None and check_signature:
        return _check_signature(head)
    return None


def _check_signature(head: AuditHead) -> BrokenLink | None:
    if not head.signature:
        return BrokenLink(head.chain, 0, None, "chain head is not signed (migration 0005_integ_audit_signature "
                                              "signed every head; this one was made or changed around the services)")
    if not hmac.compare_digest(head.signature, head_signature(head.chain, head.count, head.last_hash)):
        return BrokenLink(head.chain, 0, None, "chain head signature does not verify with AUDIT_SIGNING_KEY (the "
                                              "chain was rewritten and re-hashed, or the key is not the one used)")
    return None


def verify_registry() -> BrokenLink | None:
    """Every actor chain must be registered in its trial's chain, and every registered chain must still have its
    head: so a whole actor chain deleted (entries and head) or one added around the services is found."""
    heads = set(AuditHead.objects.values_list("chain", flat=True))
    in_use = heads | set(AuditEntry.objects.values_list("chain", flat=True).distinct())
    registered = dict(
        AuditEntry.objects.filter(action=CHAIN_OPEN).values_list("object_id", "chain")
    )
    for name, trial_chain in sorted(registered.items()):
        if name not in heads:
            return BrokenLink(name, 0, None, f"chain registered in {trial_chain} has no head (deleted)")
    for name in sorted(in_use):
        if ":user:" in name and name not in registered:
            return BrokenLink(name, 0, None, "actor chain is not registered in its trial's chain")
    return None


def verify_all() -> tuple[int, BrokenLink | None]:
    """Verify every chain, then the registry of actor chains; returns (entries checked, first broken link)."""
    chains = set(AuditHead.objects.values_list("chain", flat=True))
    chains |= set(AuditEntry.objects.values_list("chain", flat=True).distinct())
    for chain in sorted(chains):
        broken = verify_chain(chain)
        if broken:
            return AuditEntry.objects.count(), broken
    return AuditEntry.objects.count(), verify_registry()


def entry_hash_ok(entry: AuditEntry) -> bool:
    """Whether one entry's stored hash matches its content (the chain as a whole: verify_chain)."""
    return hmac.compare_digest(_entry_hash(_hashed_fields(entry)), entry.hash)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


def field_changes(entry: AuditEntry) -> list[FieldChange]:
    """Field-level old and new values of one entry: every field of a create or delete, the changed ones of an
    update (from the entry's before/after snapshots)."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if before and after and old == new:
            continue
        out.append(FieldChange(name, old, new))
    return out
