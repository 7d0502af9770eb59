"""New drafts apply the expert model's stored calibration (issue 16 items 3 and 5, issue 21 item 3).

Through the real runner (in-process, real PostgreSQL) with the tiny random Janus model and a tiny random DenseNet
expert saved in torchxrayvision's format: the draft keeps the raw expert probabilities (computed here
independently: functional forward, sigmoid, op_norm), adds the calibrated ones (computed here with
``analysis.stats.calibration.PlattCalibrator``), records the calibration record's id and a hash of its parameters
in its provenance, and the expert sentence of the prompt stays on the raw probabilities (docs/calibration.md).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from analysis.stats.calibration import PlattCalibrator
from inference.backends.calibration import apply_calibration, calibration_digest, platt
from inference.backends.prompts import chexpert_name
from inference.backends.xrv_densenet import XRV_WEIGHTS, op_norm, xrv_input
from inference.case_views import case_views
from inference.models import ArmModelVersion, Draft, ExpertCalibration, ModelVersion
from inference.runner import get_loaded_backend, run_draft
from inference.selectors import current_calibration
from inference.services import record_expert_calibration
from tests.factories.imaging import add_image
from tests.factories.trial import make_trial
from tests.inference.xrv_checkpoint import reference_forward, write_tiny_xrv_checkpoint
from trial import services
from trial.models import Trial

LABELS = {"Effusion": "pleural_effusion", "Pneumothorax": "pneumothorax", "Atelectasis": "atelectasis",
          "Consolidation": "consolidation", "Cardiomegaly": "cardiomegaly", "Lung Opacity": "lung_opacity"}


def _raw_expert(state, image) -> dict[str, float]:
    """The expert's op-normalised probabilities, computed independently of the backend."""
    x = torch.from_numpy(xrv_input(image.convert("RGB")))[None, None]
    raw = torch.sigmoid(reference_forward(state, x))[0].numpy()
    meta = XRV_WEIGHTS["densenet121-res224-all"]
    normed = op_norm(raw, meta["op_threshs"])
    by_label = dict(zip(meta["labels"], normed.tolist(), strict=True))
    return {code: by_label[label] for label, code in LABELS.items()}


@pytest.fixture
def janus_with_expert(tiny_janus_path, tmp_path, db):
    t = make_trial(code="CLD", status=Trial.Status.READING)
    ckpt = tmp_path / "densenet121-res224-all-best.pt"
    state = write_tiny_xrv_checkpoint(ckpt)
    mv = ModelVersion.objects.create(
        name="tiny-janus-CLD", backend=ModelVersion.Backend.JANUS, weights_path=str(tiny_janus_path),
        generation_params={"max_new_tokens": 4, "device": "cpu", "options": {"batch_max": 1},
                           "classifier": {"weights_path": str(ckpt), "device": "cpu",
                                          "options": {"format": "torchxrayvision"}}},
    )
    ArmModelVersion.objects.filter(arm=t["arms"]["ai_assisted"]).update(model_version=mv)
    return t, mv, state


def _draft(t, mv, code: str) -> tuple[Draft, object]:
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=code)
    add_image(case)
    draft = Draft.objects.create(case=case, model_version=mv)  # queued, not sent
    assert run_draft(None, draft.pk) == "ready", Draft.objects.get(pk=draft.pk).error
    draft.refresh_from_db()
    return draft, case


def _displayed(case, mv):
    """The first view as the janus backend hands it to its expert (the stored rendition, resized as DeepSeek's
    processor pads it: the backend's own ``_views``; the expert's forward is the independent part)."""
    backend, _ = get_loaded_backend(mv, case.trial.finding_codes, case.trial)
    return backend._views([case_views(case)[0][1]])[0]


@pytest.mark.django_db(transaction=True)
def test_a_new_draft_applies_the_latest_calibration_and_records_it(janus_with_expert):
    t, mv, state = janus_with_expert
    # before any calibration: raw only, and the provenance says none was applied
    first, image = _draft(t, mv, "C1")
    raw = _raw_expert(state, _displayed(image, mv))
    assert first.probabilities == pytest.approx(raw, abs=1e-5)
    assert first.calibrated_probabilities == {} and first.parameters["calibration"] is None
    assert first.parameters["provenance"]["expert_calibration"] is None

    # a calibration that moves every fitted finding far across 0.5, the other way from its raw probability
    findings = {}
    for code, p in raw.items():
        findings[code] = {"a": 0.8, "b": -6.0 if p >= 0.5 else 6.0, "n": 40, "n_positive": 12, "converged": True}
    findings["cardiomegaly"] = {"note": "needs at least 5 reference cases with and without the finding", "n": 40}
    record_expert_calibration(actor=t["coordinator"], trial=t["trial"], model_version=mv, method="platt",
                              n_cases=40, findings={k: {**v, "a": v["a"] - 0.3} if "a" in v else v
                                                    for k, v in findings.items()})
    cal = record_expert_calibration(actor=t["coordinator"], trial=t["trial"], model_version=mv, method="platt",
                                    n_cases=40, findings=findings)  # a refit: the latest is current

    second, image2 = _draft(t, mv, "C2")
    raw2 = _raw_expert(state, _displayed(image2, mv))
    assert second.probabilities == pytest.approx(raw2, abs=1e-5)  # raw stays raw
    expected = {code: float(PlattCalibrator(f["a"], f["b"], 40, True).apply([raw2[code]])[0])
                for code, f in findings.items() if "a" in f}
    assert second.calibrated_probabilities == pytest.approx(expected, abs=1e-6)
    assert "cardiomegaly" not in second.calibrated_probabilities  # no fit, no calibrated value
    fitted = {c: {"a": f["a"], "b": f["b"]} for c, f in findings.items() if "a" in f}
    digest = hashlib.sha256(json.dumps({"method": "platt", "parameters": fitted}, sort_keys=True,
                                       separators=(",", ":")).encode()).hexdigest()
    assert second.parameters["provenance"]["expert_calibration"] == {"id": cal.pk, "sha256": digest}
    record = second.parameters["calibration"]
    assert record["id"] == cal.pk and record["n_cases"] == 40 and record["trial"] == "CLD"
    assert record["findings"] == sorted(expected)
    assert second.parameters["provenance"]["expert_weights_sha256"]  # the expert's own hash beside it

    # the expert sentence is built from the raw probabilities at the published operating points (0.5 after
    # op_norm), although every calibrated value sits on the other side of 0.5
    positive_raw = [c for c in t["trial"].finding_codes if raw2[c] >= 0.5]
    assert second.parameters["expert"]["positive"] == positive_raw
    for code, p in expected.items():
        assert (p >= 0.5) != (raw2[code] >= 0.5)
    names = ", ".join(chexpert_name(c) for c in positive_raw) or "No Finding"
    assert f"Expert analysis: {names} present." in second.prompt


@pytest.mark.django_db
def test_the_trials_own_calibration_comes_first_then_the_latest_elsewhere():
    a, b = make_trial(code="CLA"), make_trial(code="CLB")
    mv = ModelVersion.objects.create(name="expert-CL", backend=ModelVersion.Backend.JANUS)
    fit = {"pleural_effusion": {"a": 1.2, "b": -0.1, "n": 30}}
    assert current_calibration(mv, a["trial"]) is None
    on_b = ExpertCalibration.objects.create(model_version=mv, trial=b["trial"], n_cases=30, findings=fit)
    assert current_calibration(mv, a["trial"]) == on_b  # none of its own: the latest of the model version
    on_a = ExpertCalibration.objects.create(model_version=mv, trial=a["trial"], n_cases=25, findings=fit)
    ExpertCalibration.objects.create(model_version=mv, trial=b["trial"], n_cases=31, findings=fit)  # newer, on b
    assert current_calibration(mv, a["trial"]) == on_a
    other = ModelVersion.objects.create(name="other-CL", backend=ModelVersion.Backend.JANUS)
    assert current_calibration(other, a["trial"]) is None


def test_applying_equals_the_analysis_fit_and_the_digest_names_the_parameters():
    p = np.array([1e-15, 0.02, 0.3, 0.5, 0.77, 0.999, 1.0])
    for a, b in ((1.0, 0.0), (2.5, -1.3), (0.4, 3.0), (-0.7, 0.2)):
        ref = PlattCalibrator(a, b, 10, True).apply(p)
        assert [platt(v, a, b) for v in p] == pytest.approx(ref.tolist(), abs=1e-12)
    findings = {"x": {"a": 2.0, "b": -1.0, "n": 30}, "y": {"note": "too few"}}
    assert apply_calibration({"x": 0.3, "y": 0.6, "z": 0.1}, findings) == pytest.approx(
        {"x": float(PlattCalibrator(2.0, -1.0, 30, True).apply([0.3])[0])})
    d = calibration_digest("platt", findings)
    assert d == calibration_digest("platt", {"y": {"note": "other"}, "x": {"b": -1.0, "a": 2.0, "n": 99}})
    assert d != calibration_digest("platt", {"x": {"a": 2.0, "b": -1.0000001}})
    with pytest.raises(ValueError, match="unknown calibration method"):
        apply_calibration({"x": 0.3}, findings, "isotonic")
