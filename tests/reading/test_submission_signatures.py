"""Signed submissions (issue 18 item 3, Trial.sign_submissions): each read and rating submission is signed by its
author re-entering the password (meaning authorship); the signature covers the submitted record's fields, so a later
change of the record, even by raw SQL, shows it invalid; a wrong password changes nothing and is recorded."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import InvalidInput, NotAllowed
from rating import services as rating_services
from rating.models import Rating
from reading import services
from reading.models import Read
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.factories.reading import reads_of
from tests.factories.trial import PASSWORD
from trial import services as trial_services
from trial.models import AuditEntry, Signature
from trial.signatures import Meaning, SignatureInput, signature_valid

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("SIG-3")]


def report(trial, impression="Normal chest.") -> dict:
    return {"findings_text": "Clear lungs.", "impression_text": impression,
            "finding_marks": {c: {"present": False, "confidence": 4} for c in trial.finding_codes}}


@pytest.fixture
def signing(paired):
    trial_services.update_trial_settings(paired["coordinator"], paired["trial"], reason="sponsor SOP",
                                         sign_submissions=True)
    paired["trial"].refresh_from_db()
    m = paired["un_reader"]
    m.user.first_name, m.user.last_name = "Rita", "Reader"
    m.user.save()
    paired["read"] = services.open_read(m.user, reads_of(m).first())
    return paired


def test_a_read_submission_needs_the_password_and_is_signed_as_authorship(signing):
    trial, read, user = signing["trial"], signing["read"], signing["un_reader"].user
    with pytest.raises(InvalidInput, match="electronic signature"):
        services.submit_read(user, read, report(trial))
    with pytest.raises(NotAllowed, match="password is not correct"):
        services.submit_read(user, read, report(trial), signature=SignatureInput("wrong", Meaning.AUTHORSHIP))
    read.refresh_from_db()
    assert not read.is_submitted and not Signature.objects.exists()
    failed = AuditEntry.objects.get(action="sign:failed")
    assert failed.actor_id == user.pk and failed.after["step"] == "read:submit"
    assert failed.object_type == "reading.Read" and failed.object_id == str(read.pk)

    read, created = services.submit_read(user, read, report(trial), signature=SignatureInput(PASSWORD, "approval"))
    assert created and read.is_submitted
    sig = Signature.objects.get()
    entry = AuditEntry.objects.get(action="read:submit", object_id=str(read.pk))
    assert (sig.entry_id, sig.meaning, sig.printed_name) == (entry.pk, "authorship", "Rita Reader")
    assert (sig.object_type, sig.object_id) == ("reading.Read", str(read.pk)) and signature_valid(sig)
    # A repeat (double click) is answered with the saved read and signs nothing again.
    _, again = services.submit_read(user, read, report(trial))
    assert again is False and Signature.objects.count() == 1
    call_command("verify_audit")
    # The read changed around the application afterwards: the signature no longer matches it.
    with connection.cursor() as cur:
        cur.execute("UPDATE reading_read SET impression_text = %s WHERE id = %s", ["Pneumothorax.", read.pk])
    assert not signature_valid(sig)
    c = Client()
    c.force_login(signing["coordinator"])
    html = c.get(reverse("trial:audit_entry", args=[trial.code, entry.pk])).content.decode()
    assert 'id="signature-invalid"' in html and "Rita Reader" in html
    # verify_audit and the viewer's Verify button report it although every hash chain is intact.
    with pytest.raises(CommandError, match="no longer match"):
        call_command("verify_audit")
    check = c.post(reverse("trial:audit_verify", args=[trial.code])).content.decode()
    assert "no longer match the record they signed" in check and f"signatures {sig.pk}" in check


def test_the_read_api_and_the_form_take_the_password(signing):
    trial, read, user = signing["trial"], signing["read"], signing["un_reader"].user
    api = APIClient()
    api.force_authenticate(user)
    url = reverse("reading-api:submit", args=[read.public_id])
    r = api.post(url, report(trial), format="json")
    assert r.status_code == 400 and "signature" in r.json()["detail"]
    r = api.post(url, {**report(trial), "password": "nope"}, format="json")
    assert r.status_code == 403
    r = api.post(url, {**report(trial), "password": PASSWORD}, format="json")
    assert r.status_code == 200 and r.json()["already_submitted"] is False
    assert "password" not in r.content.decode().lower()
    assert Signature.objects.get().object_id == str(read.pk)
    # The page (no JavaScript) asks for it in the submit form.
    other = services.open_read(user, reads_of(signing["un_reader"]).filter(submitted_at__isnull=True).first())
    c = Client()
    c.force_login(user)
    page = c.get(reverse("reading:read", args=[trial.code, other.public_id])).content.decode()
    assert 'id="signature-password"' in page
    form = {"findings_text": "Clear.", "impression_text": "Normal.", "password": PASSWORD,
            **{f"present_{code}": "absent" for code in trial.finding_codes},
            **{f"confidence_{code}": "4" for code in trial.finding_codes}}
    c.post(reverse("reading:submit", args=[trial.code, other.public_id]), form)
    other.refresh_from_db()
    assert other.is_submitted and Signature.objects.filter(object_id=str(other.pk)).exists()


def test_reads_are_not_signed_where_the_setting_is_off(paired):
    m = paired["un_reader"]
    read = services.open_read(m.user, reads_of(m).first())
    services.submit_read(m.user, read, report(paired["trial"]))
    assert not Signature.objects.exists()
    page = Client()
    page.force_login(m.user)
    html = page.get(reverse("reading:read", args=[paired["trial"].code, read.public_id])).content.decode()
    assert 'id="signature-password"' not in html


def test_a_rating_submission_is_signed_by_the_expert(db):
    t = rating_trial(code="RSIG", experts=2, panel=2, cases=1, sign_submissions=True)
    complete_case(t["cases"][0], sign=PASSWORD)
    rating = Rating.objects.filter(expert=t["experts"][0]).get()
    user = t["experts"][0].user
    with pytest.raises(InvalidInput, match="electronic signature"):
        rating_services.submit_rating(user, rating, GOOD)
    api = APIClient()
    api.force_authenticate(user)
    url = reverse("rating-submit", args=[t["trial"].code, rating.public_id])
    assert api.post(url, {**GOOD, "password": "nope"}, format="json").status_code == 403
    rating.refresh_from_db()
    assert rating.status != Rating.Status.DONE
    assert AuditEntry.objects.filter(action="sign:failed", actor=user).count() == 1
    r = api.post(url, {**GOOD, "password": PASSWORD}, format="json")
    assert r.status_code == 200, r.content
    sig = Signature.objects.get(object_type="rating.Rating")
    assert (sig.meaning, sig.object_id, sig.signer_id) == ("authorship", str(rating.pk), user.pk)
    assert signature_valid(sig)
    # An amendment keeps the first submission, so the signature stays valid; a raw change does not.
    rating_services.amend_rating(actor=user, rating=rating, answer={"quality_a": 1}, reason="second look")
    assert signature_valid(sig)
    Rating.objects.filter(pk=rating.pk).update(quality_a=1)
    assert not signature_valid(sig)
    page = Client()
    page.force_login(t["experts"][1].user)
    other = Rating.objects.filter(expert=t["experts"][1]).get()
    html = page.get(reverse("rating:task", args=[t["trial"].code, other.public_id])).content.decode()
    assert 'id="signature-password"' in html
    assert Read.objects.filter(case=t["cases"][0], submitted_at__isnull=False).count() == 2


def test_a_wrong_signature_leaves_no_report_text_in_the_lockout_table(signing, settings):
    """The lockout counts a wrong signature password (django-axes), but its failed-attempt table keeps the
    request's form: a signed submit's form is the report, which must not be kept there (trial/signatures.py)."""
    from axes.models import AccessAttempt

    settings.AXES_ENABLED = True
    trial, read, user = signing["trial"], signing["read"], signing["un_reader"].user
    c = Client()
    c.force_login(user)
    services.open_read(user, read)
    secret = "Distinctive report text 7f3a"
    form = {"findings_text": secret, "impression_text": "Normal.", "password": "wrong",
            **{f"present_{code}": "absent" for code in trial.finding_codes},
            **{f"confidence_{code}": "4" for code in trial.finding_codes}}
    c.post(reverse("reading:submit", args=[trial.code, read.public_id]), form)
    read.refresh_from_db()
    assert not read.is_submitted
    attempts = list(AccessAttempt.objects.filter(username=user.get_username()))
    assert attempts and attempts[0].failures_since_start == 1  # counted toward the lockout
    assert all(secret not in a.post_data and "findings_text" not in a.post_data for a in attempts)
