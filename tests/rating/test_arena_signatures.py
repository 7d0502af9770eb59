"""Signed arena judgements (issue 20 item 1 with issue 18 item 3): where Trial.sign_submissions is on, an arena
submission is signed by its expert (authorship) exactly as a rating submission is (rating.services.submit_rating)."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import InvalidInput
from rating import services as rating_services
from rating.models import ArenaTask
from tests.factories.imaging import add_image
from tests.factories.trial import PASSWORD
from tests.rating.arena_support import arena_trial, tasks_of
from trial.models import AuditEntry, Signature
from trial.signatures import signature_valid

pytestmark = pytest.mark.django_db

ANSWER = {"preference": "A", "quality_a": 4, "quality_b": 3, "comment": "A is clearer."}


def _arena(code: str, sign: bool) -> dict:
    t = arena_trial(code=code, versions=2, cases=1, experts=2, panel=2, sign_submissions=sign)
    add_image(t["cases"][0])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    return t


def test_an_arena_judgement_is_signed_by_its_expert():
    t = _arena("ASIG", sign=True)
    code = t["trial"].code
    task, user = tasks_of(t["experts"][0])[0], t["experts"][0].user
    with pytest.raises(InvalidInput, match="electronic signature"):
        rating_services.submit_arena_task(user, task, ANSWER)
    api = APIClient()
    api.force_authenticate(user)
    url = reverse("arena-submit", args=[code, task.public_id])
    assert api.post(url, {**ANSWER, "password": "nope"}, format="json").status_code == 403
    task.refresh_from_db()
    assert task.status != ArenaTask.Status.DONE and not Signature.objects.exists()
    failed = AuditEntry.objects.get(action="sign:failed", actor=user)
    assert failed.after["step"] == "arena:submit" and failed.object_id == str(task.pk)
    r = api.post(url, {**ANSWER, "password": PASSWORD}, format="json")
    assert r.status_code == 200, r.content
    assert "password" not in r.content.decode().lower()
    sig = Signature.objects.get()
    assert (sig.meaning, sig.object_type, sig.object_id, sig.signer_id) == (
        "authorship", "rating.ArenaTask", str(task.pk), user.pk)
    assert sig.entry.action == "arena:submit" and signature_valid(sig)
    # The same answer again is a success that signs nothing more; a raw change breaks the signature.
    assert api.post(url, {**ANSWER, "password": PASSWORD}, format="json").json()["already_submitted"] is True
    assert Signature.objects.count() == 1
    ArenaTask.objects.filter(pk=task.pk).update(preference="B")
    assert not signature_valid(sig)

    # The page (no JavaScript) asks for the password and signs with it.
    page = Client()
    other, expert = tasks_of(t["experts"][1])[0], t["experts"][1].user
    page.force_login(expert)
    task_url = reverse("arena:task", args=[code, other.public_id])
    assert 'id="signature-password"' in page.get(task_url).content.decode()
    assert page.post(task_url, {"preference": "tie"}).status_code == 400  # no password: refused, nothing stored
    other.refresh_from_db()
    assert other.status != ArenaTask.Status.DONE
    assert page.post(task_url, {"preference": "tie", "password": PASSWORD}).status_code == 302
    assert Signature.objects.filter(object_id=str(other.pk), signer=expert).exists()


def test_arena_judgements_are_not_signed_where_the_setting_is_off(client):
    t = _arena("ANOSIG", sign=False)
    task, user = tasks_of(t["experts"][0])[0], t["experts"][0].user
    client.force_login(user)
    task_url = reverse("arena:task", args=[t["trial"].code, task.public_id])
    assert 'id="signature-password"' not in client.get(task_url).content.decode()
    assert client.post(task_url, {"preference": "B"}).status_code == 302
    task.refresh_from_db()
    assert task.status == ArenaTask.Status.DONE and not Signature.objects.exists()
