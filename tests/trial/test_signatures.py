"""Electronic signatures (issue 18 item 3): re-authentication, meaning, printed name and UTC time, bound to the
hash of the signed step's audit entry, so a later change of that entry shows the signature invalid."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from core.errors import Conflict, ErrorCode, InvalidInput, NotAllowed
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial import selectors, services
from trial.models import AuditEntry, Signature, Trial
from trial.signatures import SignatureInput, signature_valid

pytestmark = pytest.mark.django_db


@pytest.fixture
def t():
    t = make_trial(code="SIG")
    coord = t["coordinator"]
    coord.first_name, coord.last_name = "Carla", "Coordinator"
    coord.save()
    services.update_trial_settings(coord, t["trial"], reason="sponsor SOP: signed milestones", require_signatures=True)
    t["trial"].refresh_from_db()
    assert t["trial"].status == Trial.Status.READING  # make_trial's trial is reading; the next step is signed
    return t


@pytest.mark.requirement("SIG-1")
def test_moving_to_rating_needs_the_password_and_records_a_bound_signature(t):
    coord, trial = t["coordinator"], t["trial"]
    with pytest.raises(InvalidInput, match="electronic signature"):
        services.advance_status(coord, trial, Trial.Status.RATING)
    with pytest.raises(NotAllowed, match="password is not correct"):
        services.advance_status(coord, trial, Trial.Status.RATING, signature=SignatureInput("wrong", "approval"))
    trial.refresh_from_db()
    assert trial.status == Trial.Status.READING and not Signature.objects.exists()

    services.advance_status(coord, trial, Trial.Status.RATING, signature=SignatureInput(PASSWORD, "approval"))
    sig = Signature.objects.get()
    entry = AuditEntry.objects.get(trial=trial, action="status:rating")
    assert (sig.printed_name, sig.meaning, sig.signer_id, sig.entry_id) == (
        "Carla Coordinator", "approval", coord.pk, entry.pk)
    assert sig.record_hash == entry.hash and sig.signed_at.tzinfo is not None and signature_valid(sig)
    signed = AuditEntry.objects.get(trial=trial, action="sign")
    assert signed.after["record_hash"] == entry.hash and signed.after["printed_name"] == "Carla Coordinator"
    assert PASSWORD not in str(AuditEntry.objects.values_list("before", "after", "reason"))
    call_command("verify_audit")


@pytest.mark.requirement("SIG-1")
def test_a_later_change_of_the_signed_record_invalidates_the_signature(t):
    coord, trial = t["coordinator"], t["trial"]
    services.advance_status(coord, trial, Trial.Status.RATING, signature=SignatureInput(PASSWORD, "review"))
    sig = Signature.objects.get()
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_auditentry SET reason = %s WHERE id = %s", ["backdated", sig.entry_id])
    assert not signature_valid(sig)
    c = Client()
    assert c.login(username=coord.username, password=PASSWORD)
    html = c.get(reverse("trial:audit_entry", args=[trial.code, sig.entry_id])).content.decode()
    assert 'id="signature-invalid"' in html and "Carla Coordinator" in html and "Review" in html
    with pytest.raises(PermissionError):
        sig.save()


@pytest.mark.requirement("SIG-1")
def test_the_lock_is_signed_from_the_trial_page(t):
    coord, trial = t["coordinator"], t["trial"]
    services.advance_status(coord, trial, Trial.Status.RATING, signature=SignatureInput(PASSWORD, "approval"))
    c = Client()
    assert c.login(username=coord.username, password=PASSWORD)
    # The trial page links to the confirmation, which lists what is outstanding and asks for the signature.
    status_url = reverse("trial:status", args=[trial.code])
    assert status_url in c.get(reverse("trial:detail", args=[trial.code])).content.decode()
    page = c.get(status_url).content.decode()
    assert 'id="status-signature"' in page and 'name="password"' in page
    c.post(reverse("trial:status", args=[trial.code]),
           {"to_status": "locked", "reason": "all ratings in", "password": "nope", "meaning": "approval"})
    trial.refresh_from_db()
    assert trial.status == Trial.Status.RATING
    c.post(reverse("trial:status", args=[trial.code]),
           {"to_status": "locked", "reason": "all ratings in", "password": PASSWORD, "meaning": "approval"})
    trial.refresh_from_db()
    assert trial.status == Trial.Status.LOCKED
    lock_sig = Signature.objects.get(entry__action="status:locked")
    assert lock_sig.meaning == "approval" and signature_valid(lock_sig)
    html = c.get(reverse("trial:audit_entry", args=[trial.code, lock_sig.entry_id])).content.decode()
    assert "Carla Coordinator" in html and "valid" in html and 'id="signature-invalid"' not in html


def test_trials_that_do_not_require_signatures_move_as_before(db):
    t = make_trial(code="NOSIG")
    services.lock_trial(t["coordinator"], t["trial"], reason="done")
    assert not Signature.objects.exists()


def test_a_signed_step_with_work_outstanding_needs_both_and_records_both(t):
    """Issue 17 meets issue 18: the reason for leaving work behind and the signature go on the same audit entry."""
    coord, trial = t["coordinator"], t["trial"]
    add_cases(t, 2)
    preview = selectors.status_preview(coord, trial)
    assert preview["signature_required"] and preview["reason_required"] and preview["next_status"] == "rating"
    with pytest.raises(Conflict) as exc:
        services.advance_status(coord, trial, Trial.Status.RATING, signature=SignatureInput(PASSWORD, "approval"))
    assert exc.value.code == ErrorCode.OUTSTANDING_WORK and not Signature.objects.exists()
    with pytest.raises(InvalidInput, match="electronic signature"):
        services.advance_status(coord, trial, Trial.Status.RATING, reason="sponsor deadline")
    services.advance_status(coord, trial, Trial.Status.RATING, reason="sponsor deadline",
                            signature=SignatureInput(PASSWORD, "approval"))
    entry = AuditEntry.objects.get(trial=trial, action="status:rating")
    assert entry.reason == "sponsor deadline" and entry.after["outstanding"]["reads_not_done"] > 0
    sig = Signature.objects.get()
    assert sig.entry_id == entry.pk and signature_valid(sig)
