"""Electronic signatures (issue 18 item 3; docs/audit.md): re-authentication with the password, the meaning, the
printed name and UTC time, bound to the hash of the audit entry that records the signed action."""
from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from core.errors import InvalidInput, NotAllowed

from . import audit
from .models import AuditEntry, Signature, Trial

Meaning = Signature.Meaning
# The steps signed by the coordinator where the trial requires signatures (Trial.require_signatures).
SIGNED_STEPS = (Trial.Status.RATING, Trial.Status.LOCKED)


@dataclass(frozen=True)
class SignatureInput:
    """What the signer gives: the password again (never stored) and what the signature means."""

    password: str
    meaning: str = Meaning.APPROVAL


def reauthenticate(actor, signature: SignatureInput | None) -> None:
    """Refuse before anything changes when the signature is missing or the password is wrong."""
    if signature is None or not signature.password:
        raise InvalidInput("This step needs your electronic signature: enter your password to sign.")
    if signature.meaning not in Meaning.values:
        raise InvalidInput(f"Unknown signature meaning {signature.meaning!r}.")
    if not actor.check_password(signature.password):
        raise NotAllowed("The password is not correct: nothing was signed or changed.")


def sign_entry(actor, entry: AuditEntry, signature: SignatureInput) -> Signature:
    """Sign the action an audit entry records (call after `reauthenticate`, in the action's transaction)."""
    sig = Signature.objects.create(
        trial=entry.trial, signer=actor, printed_name=actor.get_full_name() or actor.username,
        meaning=signature.meaning, signed_at=timezone.now(), entry=entry, record_hash=entry.hash,
    )
    audit.record(actor=actor, trial=entry.trial, action="sign", obj=sig, after={
        "meaning": sig.meaning, "printed_name": sig.printed_name, "signed_at": sig.signed_at,
        "entry_id": entry.pk, "signed_action": entry.action, "record_hash": sig.record_hash,
    })
    return sig


def signature_valid(sig: Signature) -> bool:
    """Valid while the signed entry still has the hash it had when signed and its content still matches it."""
    entry = AuditEntry.objects.get(pk=sig.entry_id)
    return entry.hash == sig.record_hash and audit.entry_hash_ok(entry)
