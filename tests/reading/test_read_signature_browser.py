"""Signing a read submission in the browser (issue 18 item 3, Trial.sign_submissions): the read page asks for the
password beside Submit; a wrong one is refused and nothing is submitted; the right one submits and signs."""
from __future__ import annotations

import pytest
from django.urls import reverse

from reading.models import Read
from tests.browser import assert_accessible, login, resolved, screenshot, url_name
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial.models import AuditEntry, Signature

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.requirement("SIG-3", "SIG-4")]


def test_the_reader_signs_the_submission_with_the_password(live_server, page):
    t = make_trial(code="BSIG", centers=1, sign_submissions=True)
    with_images_and_drafts(t, add_cases(t, 1))
    m = reader_in(t, "unassisted")
    login(page, live_server, m.user.username, PASSWORD)
    page.goto(live_server.url + reverse("reading:next", args=["BSIG"]))
    page.wait_for_url(lambda u: url_name(u) == "reading:read")
    read = Read.objects.get(public_id=resolved(page.url).kwargs["public_id"])
    page.fill("#findings_text", "Clear lungs.")
    for code in t["trial"].finding_codes:
        page.check(f"input[name=present_{code}][value=absent]")
        page.select_option(f"select[name=confidence_{code}]", "4")
    assert page.locator("#signature-password").is_visible()
    assert_accessible(page, "the read page with the signature field")
    screenshot(page, "read-signature")

    page.fill("#signature-password", "wrong-password")
    page.click("#submit-read")
    page.wait_for_function("document.getElementById('form-message').textContent.includes('password is not correct')")
    assert not Read.objects.get(pk=read.pk).is_submitted
    assert AuditEntry.objects.filter(action="sign:failed", actor=m.user).count() == 1
    assert page.input_value("#signature-password") == ""  # never kept in the page

    page.fill("#signature-password", PASSWORD)
    page.click("#submit-read")
    page.wait_for_function("document.getElementById('form-message').textContent === 'Report submitted.'")
    assert page.locator("#signature-password").count() == 0
    read.refresh_from_db()
    assert read.is_submitted
    sig = Signature.objects.get(object_type="reading.Read", object_id=str(read.pk))
    assert sig.meaning == "authorship" and sig.signer_id == m.user.pk
