"""A model version is immutable once it has a draft (issue 16): the service refuses, the admin cannot write, and a
change is a new version (service and command)."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from core.errors import Conflict
from inference.models import ArmModelVersion, Draft, ModelVersion
from inference.services import new_model_version_from, register_model_version, update_model_version
from tests.factories.imaging import add_image
from tests.factories.trial import PASSWORD, UserFactory, make_trial
from trial import services
from trial.models import Trial

pytestmark = pytest.mark.django_db(transaction=True)  # drafts are sent on commit


@pytest.fixture
def drafted():
    """A retrieval model version with one real draft (made in-process at enrolment)."""
    t = make_trial(code="IMM", status=Trial.Status.READING)
    t["trial"].allow_retrieval_baseline = True
    t["trial"].save(update_fields=["allow_retrieval_baseline"])
    mv = register_model_version(name="baseline-imm", backend="retrieval", generation_params={"max_new_tokens": 64},
                                prompt_template="janus-pro-cxr")
    arm = t["arms"]["ai_assisted"]
    ArmModelVersion.objects.filter(arm=arm).update(model_version=mv)
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="I1")
    add_image(case)
    services.enrol_case(t["coordinator"], case)
    assert Draft.objects.get(case=case, model_version=mv).status == "ready"
    return mv


def test_a_version_without_drafts_may_change():
    mv = register_model_version(name="fresh", backend="janus", weights_path="/models/a")
    update_model_version(model_version=mv, weights_path="/models/b", generation_params={"max_new_tokens": 512})
    mv.refresh_from_db()
    assert mv.weights_path == "/models/b" and mv.generation_params == {"max_new_tokens": 512}


@pytest.mark.parametrize("field,value", [
    ("weights_path", "/models/other"), ("weights_sha256", "0" * 64), ("generation_params", {"max_new_tokens": 512}),
    ("prompt_template", "cxr-trial-v1"), ("backend", "janus"), ("name", "renamed"),
])
def test_a_version_with_a_draft_refuses_changes(drafted, field, value):
    before = {f: getattr(drafted, f) for f in ("weights_path", "weights_sha256", "generation_params",
                                                "prompt_template", "backend", "name")}
    with pytest.raises(Conflict, match=f"its {field} cannot change: make a new version"):
        update_model_version(model_version=drafted, **{field: value})
    drafted.refresh_from_db()
    assert {f: getattr(drafted, f) for f in before} == before


def test_active_may_change_and_an_unchanged_value_is_no_change(drafted):
    update_model_version(model_version=drafted, active=False, prompt_template=drafted.prompt_template)
    drafted.refresh_from_db()
    assert drafted.active is False


def test_a_change_makes_a_new_version(drafted):
    ModelVersion.objects.filter(pk=drafted.pk).update(weights_path="/models/v1", weights_sha256="a" * 64)
    drafted.refresh_from_db()
    same_weights = new_model_version_from(source=drafted, name="baseline-imm-512",
                                          generation_params={"max_new_tokens": 512})
    assert same_weights.pk != drafted.pk and not same_weights.drafts.exists()
    assert same_weights.weights_sha256 == "a" * 64  # same weights: the pin is kept
    assert (same_weights.backend, same_weights.prompt_template) == (drafted.backend, drafted.prompt_template)
    assert same_weights.generation_params == {"max_new_tokens": 512}
    new_weights = new_model_version_from(source=drafted, name="baseline-imm-v2", weights_path="/models/v2")
    assert new_weights.weights_sha256 == ""  # its first draft pins its own
    drafted.refresh_from_db()
    assert drafted.generation_params == {"max_new_tokens": 64} and drafted.weights_path == "/models/v1"
    with pytest.raises(Conflict, match="exists"):
        new_model_version_from(source=drafted, name="baseline-imm-v2")


def test_new_model_version_command(drafted):
    out = StringIO()
    call_command("new_model_version", drafted.name, "baseline-imm-b", "--generation-params", '{"max_new_tokens": 8}',
                 "--prompt-template", "cxr-trial-v1", stdout=out)
    mv = ModelVersion.objects.get(name="baseline-imm-b")
    assert mv.generation_params == {"max_new_tokens": 8} and mv.prompt_template == "cxr-trial-v1"
    assert "Made model version baseline-imm-b" in out.getvalue()
    with pytest.raises(CommandError, match="exists"):
        call_command("new_model_version", drafted.name, "baseline-imm-b", stdout=StringIO())


def test_the_admin_cannot_change_a_version(drafted, client):
    root = UserFactory(username="imm-root", is_superuser=True, is_staff=True)
    assert client.login(username=root.username, password=PASSWORD)
    url = reverse("admin:inference_modelversion_change", args=[drafted.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content  # a read-only view
    r = client.post(url, {"name": drafted.name, "backend": "janus", "weights_path": "/elsewhere",
                          "generation_params": "{}", "prompt_template": "", "active": "on"})
    assert r.status_code == 403
    drafted.refresh_from_db()
    assert drafted.backend == "retrieval" and drafted.weights_path == ""
