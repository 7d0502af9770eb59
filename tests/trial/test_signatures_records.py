"""Electronic signatures, second part (issue 18 item 3): sealing the allocation list signed and bound to its
commitment; a wrong password recorded (it changes nothing) and counted toward the lockout like a failed login."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from core.errors import InvalidInput, NotAllowed
from tests.factories.trial import PASSWORD, UserFactory, make_trial
from trial import services
from trial.models import AllocationList, AuditEntry, Signature, Trial
from trial.signatures import SignatureInput, signature_valid

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup_trial():
    coord = UserFactory(username="seal-coord", is_staff=True, first_name="Sam", last_name="Sealer")
    trial = services.create_trial(None, code="SEAL", title="Sealed", require_signatures=True)
    services.add_member(None, trial, user=coord, role="coordinator")
    services.add_center(coord, trial, code="c1", name="Center 1")
    services.add_arm(coord, trial, code="unassisted", name="Standard care")
    services.add_arm(coord, trial, code="ai_assisted", name="AI-assisted", is_ai=True)
    trial.refresh_from_db()
    return trial, coord


@pytest.mark.requirement("SIG-2", "SIG-4")
def test_sealing_the_allocation_list_is_signed_and_bound_to_its_commitment(setup_trial):
    trial, coord = setup_trial
    with pytest.raises(InvalidInput, match="electronic signature"):
        services.generate_allocation_list(coord, trial, block_sizes=[2, 4])
    with pytest.raises(NotAllowed, match="password is not correct"):
        services.generate_allocation_list(coord, trial, block_sizes=[2, 4], signature=SignatureInput("wrong"))
    assert not AllocationList.objects.exists() and not Signature.objects.exists()
    failed = AuditEntry.objects.get(action="sign:failed")  # recorded although the step was refused
    assert failed.actor_id == coord.pk and failed.trial_id == trial.pk
    assert failed.after == {"step": "allocation_list:generate", "meaning": "approval"}
    assert "wrong" not in str(AuditEntry.objects.values_list("before", "after", "reason"))
    assert AuditEntry.objects.filter(action="auth:login_failed", object_id=coord.username).exists()

    alist = services.generate_allocation_list(coord, trial, block_sizes=[2, 4],
                                              signature=SignatureInput(PASSWORD, "approval"))
    sig = Signature.objects.get()
    entry = AuditEntry.objects.get(action="allocation_list:generate")
    assert (sig.entry_id, sig.printed_name, sig.meaning) == (entry.pk, "Sam Sealer", "approval")
    assert (sig.object_type, sig.object_id) == ("trial.AllocationList", str(alist.pk))
    assert "seed" not in sig.signed_fields and "salt" not in sig.signed_fields and "list_hash" in sig.signed_fields
    assert signature_valid(sig)
    call_command("verify_audit")
    # A later change of the sealed list's commitment, even around the application, shows the signature invalid.
    with connection.cursor() as cur:
        cur.execute("UPDATE trial_allocationlist SET list_hash = %s WHERE id = %s", ["0" * 64, alist.pk])
    assert not signature_valid(sig)


def test_sealing_is_signed_from_the_trial_page_and_the_api(setup_trial):
    trial, coord = setup_trial
    c = Client()
    c.force_login(coord)
    page = c.get(reverse("trial:detail", args=[trial.code])).content.decode()
    assert 'id="seal-signature"' in page and 'name="password"' in page
    url = reverse("trial:allocation_generate", args=[trial.code])
    c.post(url, {"block_sizes": "2,4", "password": "nope", "meaning": "approval"})
    assert not AllocationList.objects.exists()
    r = c.post(reverse("trial-allocation-list", args=[trial.code]), {"block_sizes": [2, 4]},
               content_type="application/json")
    assert r.status_code == 400 and not AllocationList.objects.exists()
    r = c.post(reverse("trial-allocation-list", args=[trial.code]),
               {"block_sizes": [2, 4], "password": PASSWORD, "meaning": "review"}, content_type="application/json")
    assert r.status_code == 201, r.content
    assert Signature.objects.get().meaning == "review"
    assert AuditEntry.objects.filter(action="sign:failed").count() == 1  # the page's wrong password


@pytest.mark.requirement("SIG-4", "ACC-2")
def test_wrong_signature_passwords_count_toward_the_lockout(settings):
    settings.AXES_ENABLED = True
    t = make_trial(code="LOCKSIG")
    coord, trial = t["coordinator"], t["trial"]
    services.update_trial_settings(coord, trial, reason="SOP", require_signatures=True)
    c = Client()
    c.force_login(coord)
    url = reverse("trial-status", args=[trial.code])
    for i in range(settings.AXES_FAILURE_LIMIT):
        r = c.post(url, {"to_status": "rating", "password": f"guess-{i}"}, content_type="application/json")
        assert r.status_code in (403, 429), r.content
    assert AuditEntry.objects.filter(action="sign:failed", actor=coord).count() == settings.AXES_FAILURE_LIMIT
    assert AuditEntry.objects.filter(action="auth:lockout", object_id=coord.username).exists()
    # Locked out: the right password signs nothing now, and the login is refused too.
    r = c.post(url, {"to_status": "rating", "password": PASSWORD}, content_type="application/json")
    assert r.status_code in (403, 429)
    trial.refresh_from_db()
    assert trial.status == Trial.Status.READING and not Signature.objects.exists()
    login = Client().post(reverse("login"), {"username": coord.username, "password": PASSWORD})
    assert "_auth_user_id" not in login.wsgi_request.session
    call_command("verify_audit")
