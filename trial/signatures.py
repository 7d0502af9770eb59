"""Electronic signatures (issue 18 item 3; docs/audit.md; 21 CFR 11.50, 11.70, 11.200): re-authentication with the
password, the meaning, the printed name and UTC time, bound to the hash of the audit entry that records the signed
action and to a hash of the signed record's fields, so a later change of either shows the signature as invalid.

Signed: moving to rating and to locked and sealing the allocation list (coordinator, where the trial requires
signatures), declaring an analysis run final (statistician, always), and each read and rating submission (reader,
expert, where the trial's `sign_submissions` is on).

A wrong password is refused before anything changes, and recorded: `check_password_first` runs before the signed
step's transaction (a failure recorded inside it would roll back with the refused step), writes a `sign:failed`
entry in the signer's audit chain and announces a failed login (`user_login_failed`), so the attempt is in the
site's failed-login record and counts toward the lockout exactly like a failed login (django-axes, per username and
IP address of the request).
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.apps import apps
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.http import QueryDict
from django.utils import timezone

from core.errors import InvalidInput, NotAllowed
from core.middleware import current_request

from . import audit
from .models import AuditEntry, Signature, Trial

Meaning = Signature.Meaning
# The steps signed by the coordinator where the trial requires signatures (Trial.require_signatures).
SIGNED_STEPS = (Trial.Status.RATING, Trial.Status.LOCKED)
WRONG_PASSWORD = "The password is not correct: nothing was signed or changed."
LOCKED_OUT = "Too many failed sign-in or signature attempts: signing is locked for a while."


@dataclass(frozen=True)
class SignatureInput:
    """What the signer gives: the password again (never stored) and what the signature means."""

    password: str
    meaning: str = Meaning.APPROVAL


def submission_signature(password) -> SignatureInput | None:
    """A read's or rating's signature as its submit request carries it (Trial.sign_submissions): the password
    again; the meaning is always authorship (the signer wrote the record)."""
    return SignatureInput(password, Meaning.AUTHORSHIP) if isinstance(password, str) and password else None


def _credentials(actor) -> dict:
    return {"username": actor.get_username()}


def _locked_out(actor, request) -> bool:
    return bool(settings.AXES_ENABLED and request is not None
                and not AxesProxyHandler.is_allowed(request, _credentials(actor)))


def check_password_first(actor, trial: Trial | None, signature: SignatureInput | None, *, action: str,
                         obj: models.Model | None = None) -> None:
    """Before the signed step's transaction: a wrong password is recorded (``sign:failed`` in the signer's chain,
    and a failed login toward the lockout) and refused; a locked-out signer is refused. No signature given: nothing
    to check here (the step says whether it needs one)."""
    if signature is None or not signature.password:
        return
    request = current_request()
    if _locked_out(actor, request):
        raise NotAllowed(LOCKED_OUT)
    if actor.check_password(signature.password):
        return
    with transaction.atomic():
        audit.record(actor=actor, trial=trial, action="sign:failed", obj=obj,
                     after={"step": action, "meaning": str(signature.meaning)})
    user_login_failed.send(sender=__name__, credentials=_credentials(actor), request=_without_form(request))
    raise NotAllowed(WRONG_PASSWORD)


def _without_form(request):
    """The request as the lockout records it: without its form. django-axes stores a failed attempt's POST data
    (all but the password) for the cool-off; a signed submit's form is a report or a rating, which the failed-login
    table must not keep (docs/audit.md, "Electronic signatures")."""
    if request is None:
        return None
    bare = copy.copy(request)
    bare.POST = QueryDict()
    return bare


def reauthenticate(actor, signature: SignatureInput | None) -> None:
    """Refuse before anything changes when the signature is missing or the password is wrong (inside the step)."""
    if signature is None or not signature.password:
        raise InvalidInput("This step needs your electronic signature: enter your password to sign.")
    if signature.meaning not in Meaning.values:
        raise InvalidInput(f"Unknown signature meaning {signature.meaning!r}.")
    if not actor.check_password(signature.password):
        raise NotAllowed(WRONG_PASSWORD)


def content_hash(obj: models.Model, fields: tuple[str, ...] | list[str]) -> str:
    """SHA-256 of the record's identity and the values of the signed fields (database column names)."""
    values = audit.snapshot(obj) or {}
    payload = {"record": f"{obj._meta.label}:{obj.pk}", "fields": {f: values.get(f) for f in fields}}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


def sign_entry(actor, entry: AuditEntry, signature: SignatureInput, *, obj: models.Model | None = None,
               fields: tuple[str, ...] = ()) -> Signature:
    """Sign the action an audit entry records (call after `reauthenticate`, in the action's transaction). With
    ``obj`` and ``fields``, the signature also covers those fields of the record as they are now."""
    bound = obj is not None and bool(fields)
    sig = Signature.objects.create(
        trial=entry.trial, signer=actor, printed_name=actor.get_full_name() or actor.username,
        meaning=signature.meaning, signed_at=timezone.now(), entry=entry, record_hash=entry.hash,
        object_type=obj._meta.label if bound else "", object_id=str(obj.pk) if bound else "",
        signed_fields=list(fields) if bound else [], content_hash=content_hash(obj, fields) if bound else "",
    )
    audit.record(actor=actor, trial=entry.trial, action="sign", obj=sig, after={
        "meaning": sig.meaning, "printed_name": sig.printed_name, "signed_at": sig.signed_at,
        "entry_id": entry.pk, "signed_action": entry.action, "record_hash": sig.record_hash,
        "record": f"{sig.object_type}:{sig.object_id}" if bound else "", "content_hash": sig.content_hash,
    })
    return sig


def record_unchanged(sig: Signature) -> bool:
    """The signed record still has the signed fields' values (True when the signature covers no record fields)."""
    if not sig.signed_fields:
        return True
    obj = apps.get_model(sig.object_type).objects.filter(pk=sig.object_id).first()
    return obj is not None and content_hash(obj, sig.signed_fields) == sig.content_hash


def verify_signatures(trial: Trial | None = None) -> tuple[int, list[Signature]]:
    """Every signature (of one trial, or all): how many were checked and those that no longer match their signed
    entry or record (`verify_audit` and the audit viewer's Verify button report them)."""
    sigs = Signature.objects.all() if trial is None else Signature.objects.filter(trial=trial)
    checked = list(sigs.order_by("pk"))
    return len(checked), [s for s in checked if not signature_valid(s)]


def signature_valid(sig: Signature) -> bool:
    """Valid while the signed entry still has the hash it had when signed, its content still matches it, and the
    signed record's fields are unchanged."""
    entry = AuditEntry.objects.get(pk=sig.entry_id)
    return entry.hash == sig.record_hash and audit.entry_hash_ok(entry) and record_unchanged(sig)
