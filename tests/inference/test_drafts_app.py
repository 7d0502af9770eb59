"""Drafts inside the app: queued at enrolment, made in-process by the retrieval baseline, visible to
coordinators with their timing, failed drafts retried."""
from __future__ import annotations

from io import StringIO

import pytest
from django.urls import reverse

from inference.models import ArmModelVersion, Draft
from tests.factories.imaging import add_image
from tests.factories.trial import PASSWORD, make_trial
from trial import services
from trial.models import AuditEntry, Trial

pytestmark = pytest.mark.django_db(transaction=True)  # drafts are sent on commit


@pytest.fixture
def t():
    return make_trial(code="DRF", status=Trial.Status.READING)


def test_enrolment_makes_a_retrieval_draft_for_every_case(t):
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="D1")
    add_image(case)
    services.enrol_case(t["coordinator"], case)
    d = Draft.objects.get(case=case)
    assert d.status == "ready", d.error
    assert d.model_version.backend == "retrieval" and d.parameters["backend"] == "retrieval"
    # one case: the bundled IU bank (no images) is used, so the draft has text and no probabilities
    assert d.findings_text and d.probabilities == {} and d.parameters["retrieval_mode"] == "hash"
    assert d.neighbours and d.queue_wait_s is not None and d.generate_s is not None and d.attempts == 1


def test_failed_draft_is_shown_and_retried(t, client):
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="D2")
    services.enrol_case(t["coordinator"], case)  # no image yet
    d = Draft.objects.get(case=case)
    assert d.status == "failed" and "has no images" in d.error
    client.login(username=t["coordinator"].username, password=PASSWORD)
    page = client.get(reverse("inference:drafts", args=[t["trial"].code]))
    assert page.status_code == 200 and b"has no images" in page.content and b"retrieval baseline" in page.content
    add_image(case)
    r = client.post(reverse("inference:retry", args=[t["trial"].code, d.pk]), follow=True)
    assert b"queued again" in r.content
    d.refresh_from_db()
    assert d.status == "ready" and d.attempts == 2 and d.error == ""
    assert AuditEntry.objects.filter(trial=t["trial"], action="draft:retry").count() == 1
    r = client.post(reverse("inference:retry", args=[t["trial"].code, d.pk]), follow=True)
    assert b"Only failed drafts" in r.content
    assert Draft.objects.filter(case=case).count() == 1


def test_readers_cannot_see_the_drafts_page(t, client):
    client.login(username=t["readers"][0].user.username, password=PASSWORD)
    assert client.get(reverse("inference:drafts", args=[t["trial"].code])).status_code == 403


def _janus_arm(t: dict, weights):
    from inference.models import ModelVersion

    mv = ModelVersion.objects.create(
        name=f"tiny-janus-{t['trial'].code}", backend=ModelVersion.Backend.JANUS, weights_path=str(weights),
        generation_params={"max_new_tokens": 6, "device": "cpu"},
    )
    arm = t["arms"]["ai_assisted"]
    ArmModelVersion.objects.filter(arm=arm).update(model_version=mv)
    return mv


def test_janus_draft_in_process_uses_the_frontal_view_and_records_provenance(t, tiny_janus_path):
    mv = _janus_arm(t, tiny_janus_path)
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="D5")
    lateral = add_image(case, name="lateral")
    lateral.view_position = "LL"
    lateral.save(update_fields=["view_position"])
    add_image(case, name="frontal")  # PA, imported after the lateral
    services.enrol_case(t["coordinator"], case)
    d = Draft.objects.get(case=case, model_version=mv)
    assert d.status == "ready", d.error
    assert [v["view_position"] for v in d.parameters["images"]] == ["PA", "LL"]  # frontal first
    provenance = d.parameters["provenance"]
    assert provenance["tokenizer_sha256"]["tokenizer.json"] and provenance["template_sha256"]
    assert provenance["torch"] and provenance["transformers"] and provenance["expert_weights_sha256"] is None
    assert d.probabilities == {} and d.parameters["prompt_template"] == "janus-pro-cxr"
    mv.refresh_from_db()
    assert len(mv.weights_sha256) == 64  # written with the first draft


def test_changed_weights_are_refused_for_an_existing_model_version(tmp_path):
    import torch

    from inference.backends import get_backend
    from inference.backends.classifier import build_small_cxr_net, save_checkpoint
    from inference.models import ModelVersion
    from inference.runner import PermanentDraftError, _check_weights_identity

    net = build_small_cxr_net(2, width=4, depth=1)
    backend = get_backend("classifier")
    backend.load({"weights_path": str(save_checkpoint(net, tmp_path / "a.pt", ["x", "y"], width=4, depth=1))})
    mv = ModelVersion(name="expert", weights_path=str(tmp_path / "a.pt"))
    digest = _check_weights_identity(mv, backend)
    mv.weights_sha256 = digest
    assert _check_weights_identity(mv, backend) == digest
    with torch.no_grad():
        net[-1].bias.add_(1.0)
    backend.load({"weights_path": str(save_checkpoint(net, tmp_path / "a.pt", ["x", "y"], width=4, depth=1))})
    with pytest.raises(PermanentDraftError, match="changed since its first draft"):
        _check_weights_identity(mv, backend)


def test_stale_running_draft_is_requeued_and_redone(t):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="D6")
    add_image(case)
    services.enrol_case(t["coordinator"], case)
    d = Draft.objects.get(case=case)
    assert d.status == "ready"
    # a worker host vanished mid-draft: RUNNING for two hours, its message gone
    Draft.objects.filter(pk=d.pk).update(status="running", started_at=timezone.now() - timedelta(hours=2))
    call_command("requeue_drafts", "--older-than", "86400", "--stale", "7200", stdout=StringIO())
    d.refresh_from_db()
    assert d.status == "ready" and d.attempts == 2 and d.error == ""
    # a draft running for less than the limit is left alone
    Draft.objects.filter(pk=d.pk).update(status="running", started_at=timezone.now())
    call_command("requeue_drafts", "--older-than", "86400", "--stale", "7200", stdout=StringIO())
    assert Draft.objects.get(pk=d.pk).status == "running"


def test_queued_drafts_of_one_model_version_are_generated_as_one_batch(t, tiny_janus_path):
    from inference.runner import IN_BATCH, run_draft

    mv = _janus_arm(t, tiny_janus_path)
    drafts = []
    for code in ("B1", "B2", "B3"):
        case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=code)
        add_image(case)
        drafts.append(Draft.objects.create(case=case, model_version=mv))  # queued; no task sent yet
    assert run_draft(None, drafts[0].pk) == "ready"  # the first task takes the other two along
    for d in drafts:
        d.refresh_from_db()
        assert d.status == "ready", d.error
        assert d.parameters["batch_size"] == 3 and d.attempts == 1 and d.prompt
    assert run_draft(None, drafts[1].pk) == "already ready"  # the companion's own message does nothing
    # while a batch runs, a companion's own message leaves it to the batch
    Draft.objects.filter(pk=drafts[2].pk).update(status="running", parameters={"batch_leader": drafts[0].pk})
    assert run_draft(None, drafts[2].pk) == IN_BATCH


def test_batching_can_be_switched_off(t, tiny_janus_path):
    from inference.runner import run_draft

    mv = _janus_arm(t, tiny_janus_path)
    mv.generation_params = {**mv.generation_params, "options": {"batch_max": 1}}
    mv.save(update_fields=["generation_params"])
    drafts = []
    for code in ("S1", "S2"):
        case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=code)
        add_image(case)
        drafts.append(Draft.objects.create(case=case, model_version=mv))
    assert run_draft(None, drafts[0].pk) == "ready"
    assert Draft.objects.get(pk=drafts[1].pk).status == "queued"
    assert Draft.objects.get(pk=drafts[0].pk).parameters["batch_size"] == 1
