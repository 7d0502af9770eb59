"""Declaring an analysis run final (issue 18 item 3): a statistician's electronic signature, always required, on a
finished run of the locked trial, bound to the run's results and the hashes of its files; one final run per trial."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from analysis import services
from analysis.models import AnalysisRun
from core.errors import Conflict, InvalidInput, NotAllowed
from tests.factories.trial import PASSWORD
from trial import services as trial_services
from trial.models import AuditEntry, Membership, Signature
from trial.signatures import SignatureInput, signature_valid

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("SIG-2")]


def _user(trial, role):
    return Membership.objects.filter(trial=trial, role=role).select_related("user").first().user


@pytest.fixture
def runs(small_trial, django_capture_on_commit_callbacks):
    trial = small_trial["trial"]
    stat = _user(trial, "statistician")
    with django_capture_on_commit_callbacks(execute=True):
        masked = services.request_analysis(stat, trial)
    trial_services.lock_trial(_user(trial, "coordinator"), trial, reason="end of study")
    with django_capture_on_commit_callbacks(execute=True):
        final = services.request_analysis(stat, trial)
    masked.refresh_from_db()
    final.refresh_from_db()
    assert masked.status == final.status == AnalysisRun.Status.DONE and final.arms_masked is False
    return {"trial": trial, "stat": stat, "masked": masked, "run": final}


def test_a_statistician_declares_the_run_final_with_a_signature_bound_to_its_results(runs):
    trial, stat, run = runs["trial"], runs["stat"], runs["run"]
    with pytest.raises(InvalidInput, match="electronic signature"):
        services.declare_final(actor=stat, run=run, signature=None)
    with pytest.raises(NotAllowed, match="password is not correct"):
        services.declare_final(actor=stat, run=run, signature=SignatureInput("wrong"))
    assert AuditEntry.objects.filter(action="sign:failed", actor=stat).count() == 1
    with pytest.raises(NotAllowed):
        services.declare_final(actor=_user(trial, "coordinator"), run=run, signature=SignatureInput(PASSWORD))
    with pytest.raises(Conflict):  # a run made before lock, on masked arms
        services.declare_final(actor=stat, run=runs["masked"], signature=SignatureInput(PASSWORD))
    run.refresh_from_db()
    assert run.final_at is None and not Signature.objects.exists()

    run = services.declare_final(actor=stat, run=run, signature=SignatureInput(PASSWORD, "approval"))
    assert run.final_at is not None and run.final_by == stat
    sig = Signature.objects.get()
    entry = AuditEntry.objects.get(action="analysis:final")
    assert sig.entry_id == entry.pk and sig.meaning == "approval" and sig.object_type == "analysis.AnalysisRun"
    assert entry.after["data_sha256"] == run.data_sha256 and len(entry.after["files"]["export.zip"]) == 64
    assert signature_valid(sig)
    call_command("verify_audit")
    with pytest.raises(Conflict):  # one final run per trial
        services.declare_final(actor=stat, run=runs["masked"], signature=SignatureInput(PASSWORD))
    AnalysisRun.objects.filter(pk=run.pk).update(summary={"changed": True})
    assert not signature_valid(sig)


def test_declaring_final_through_the_api(runs):
    trial, stat, run = runs["trial"], runs["stat"], runs["run"]
    api = APIClient()
    api.force_authenticate(stat)
    url = reverse("analysis-run-final", args=[trial.code, run.pk])
    assert api.post(url, {}, format="json").status_code == 400
    assert api.post(url, {"password": "nope"}, format="json").status_code == 403
    r = api.post(url, {"password": PASSWORD, "meaning": "approval"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["final_by"] == stat.username and r.json()["final_at"]
    assert "password" not in r.content.decode().lower()


def test_declaring_final_from_the_analysis_page(runs, client):
    trial, stat, run = runs["trial"], runs["stat"], runs["run"]
    client.force_login(stat)
    page = client.get(reverse("analysis:page", args=[trial.code])).content.decode()
    assert 'id="declare-final"' in page and 'name="password"' in page
    url = reverse("analysis:final", args=[trial.code, run.pk])
    client.post(url, {"password": "nope"})
    run.refresh_from_db()
    assert run.final_at is None
    assert client.post(url, {"password": PASSWORD, "meaning": "approval"}).status_code == 302
    run.refresh_from_db()
    assert run.final_by == stat
    page = client.get(reverse("analysis:page", args=[trial.code])).content.decode()
    assert 'id="final-run"' in page and 'id="declare-final"' not in page
    coord = _user(trial, "coordinator")
    client.force_login(coord)
    assert 'id="declare-final"' not in client.get(reverse("analysis:page", args=[trial.code])).content.decode()
