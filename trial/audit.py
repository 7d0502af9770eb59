"""Append-only, hash-chained audit log (DESIGN.md section 5).

One chain per trial (plus a global chain). Appending locks the chain's head row, so entries of one chain are
strictly sequential; each entry's hash covers its content and the previous entry's hash, so editing, deleting
or reordering a past entry breaks a link that `verify_chain` finds.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone

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


def chain_name(trial: Trial | None) -> str:
    return f"trial:{trial.pk}" if trial is not None else "global"


def _locked_head(trial: Trial | None) -> AuditHead:
    name = chain_name(trial)
    try:
        with transaction.atomic():
            AuditHead.objects.get_or_create(chain=name, defaults={"trial": trial})
    except IntegrityError:
        pass  # created concurrently by another transaction
    return AuditHead.objects.select_for_update().get(chain=name)


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
    with transaction.atomic():
        head = _locked_head(trial)
        entry = AuditEntry(
            chain=head.chain,
            sequence=head.count + 1,
            trial=trial,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_name=getattr(actor, "username", "") or "system",
            at=timezone.now(),
            action=action,
            object_type=object_type or (obj._meta.label if obj is not None else ""),
            object_id=object_id or (str(obj.pk) if obj is not None else ""),
            before=to_json(before),
            after=to_json(after),
            reason=reason,
            prev_hash=head.last_hash,
        )
        entry.hash = _entry_hash(_hashed_fields(entry))
        entry.save()
        head.last_hash = entry.hash
        head.count = entry.sequence
        head.save(update_fields=["last_hash", "count"])
        return entry


@dataclass
class BrokenLink:
    chain: str
    sequence: int
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        return f"chain {self.chain}, entry #{self.sequence} (id {self.entry_id}): {self.problem}"


def verify_chain(chain: str) -> BrokenLink | None:
    """Return the first broken link of a chain, or None when it is intact."""
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
    return None


def verify_all() -> tuple[int, BrokenLink | None]:
    """Verify every chain; returns (entries checked, first broken link or None)."""
    chains = set(AuditHead.objects.values_list("chain", flat=True))
    chains |= set(AuditEntry.objects.values_list("chain", flat=True).distinct())
    for chain in sorted(chains):
        broken = verify_chain(chain)
        if broken:
            return AuditEntry.objects.count(), broken
    return AuditEntry.objects.count(), None
