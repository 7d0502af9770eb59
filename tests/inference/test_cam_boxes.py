"""Boxes from the expert DenseNet's class-activation maps (issue 21 item 1): the CAM against an independent
computation with a tiny checkpoint in torchxrayvision's format, the box rule on maps made by hand, and CAM boxes
stored in a draft through the real runner (tiny Janus model, in-process, real PostgreSQL)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from inference.backends.cam import cam_box, class_activation_maps, to_image_box, upsample
from inference.backends.xrv_densenet import XrvExpert, build_xrv_densenet, read_xrv_state_dict, xrv_input
from inference.case_views import case_views
from inference.models import ArmModelVersion, Draft, ModelVersion
from inference.runner import run_draft
from tests.factories.imaging import add_image
from tests.factories.trial import make_trial
from tests.inference.xrv_checkpoint import TINY, reference_features, write_tiny_xrv_checkpoint
from trial import services
from trial.models import Trial

LABELS = {"Effusion": "pleural_effusion", "Pneumothorax": "pneumothorax", "Atelectasis": "atelectasis",
          "Consolidation": "consolidation", "Cardiomegaly": "cardiomegaly", "Lung Opacity": "lung_opacity"}


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "densenet121-res224-all-best.pt"
    return path, write_tiny_xrv_checkpoint(path)


def _reference_box(state, image: Image.Image, label_index: int, fraction: float = 0.5):
    """The box rule of inference/backends/cam.py written out with NumPy/SciPy on the reference features."""
    x = torch.from_numpy(xrv_input(image))[None, None]
    feats = reference_features(state, x)[0].double().numpy()  # (C, h, w)
    cam = np.tensordot(state["classifier.weight"][label_index].double().numpy(), feats, axes=1)
    heat = F.interpolate(torch.from_numpy(cam)[None, None], size=(224, 224), mode="bilinear",
                         align_corners=False)[0, 0].numpy()
    if heat.max() <= 0:
        return None
    comps, n = ndimage.label(heat >= fraction * heat.max())
    sizes = [(comps == i).sum() for i in range(1, n + 1)]
    best = [i + 1 for i, s in enumerate(sizes) if s == max(sizes)]
    pick = comps.flat[heat.argmax()] if comps.flat[heat.argmax()] in best else best[0]
    ys, xs = np.nonzero(comps == pick)
    w, h = image.size
    side = min(w, h)
    k, left, top = side / 224, (w - side) // 2, (h - side) // 2
    return (left + xs.min() * k, top + ys.min() * k, left + (xs.max() + 1) * k, top + (ys.max() + 1) * k)


def _image(seed: int = 3, size=(300, 260)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random(size[::-1]) * 255).astype(np.uint8))


def test_the_cam_is_the_classifier_weights_times_the_final_features(checkpoint):
    path, state = checkpoint
    model = build_xrv_densenet(18, **TINY)
    model.load_state_dict(read_xrv_state_dict(path))
    model.eval()
    x = torch.from_numpy(np.stack([xrv_input(_image(3)), xrv_input(_image(4))])[:, None])
    cams, logits = class_activation_maps(model, x)
    feats = reference_features(state, x).double()
    ref = torch.einsum("lc,nchw->nlhw", state["classifier.weight"].double(), feats).numpy()
    assert cams.shape == ref.shape == (2, 18, 7, 7)
    assert np.abs(cams - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())
    # the defining identity: each map's mean plus the label's bias is the label's logit
    bias = state["classifier.bias"].double().numpy()
    assert ref.mean(axis=(2, 3)) + bias == pytest.approx(logits.astype(float), abs=1e-4)


def test_the_box_is_the_largest_region_above_the_fraction_of_the_maximum():
    heat = np.zeros((20, 30))
    heat[2:5, 3:6] = 1.0  # the peak, 9 pixels
    heat[10:16, 12:20] = 0.7  # above half the peak, 48 pixels: the largest region
    heat[18:20, 0:30] = 0.4  # below half the peak, 60 pixels
    assert cam_box(heat, 0.5) == (12, 10, 20, 16)
    assert cam_box(heat, 0.8) == (3, 2, 6, 5)  # only the peak region is left
    assert cam_box(heat, 0.3) == (0, 18, 30, 20)  # now the two bottom rows are in, and larger
    assert cam_box(-np.ones((4, 4))) is None and cam_box(np.zeros((4, 4))) is None
    diagonal = np.eye(6)  # 4-connectivity: six single pixels, the one at the peak (the first) wins the tie
    assert cam_box(diagonal, 0.5) == (0, 0, 1, 1)
    with pytest.raises(ValueError):
        cam_box(heat, 0.0)


def test_boxes_map_back_through_the_centre_crop():
    # a 300 x 260 image: centre square of 260 starting at x = 20, scaled 260 / 224
    assert to_image_box((0, 0, 224, 224), (300, 260), 224) == (20, 0, 280, 260)
    assert to_image_box((112, 56, 168, 112), (260, 400), 224) == pytest.approx((130, 70 + 65, 195, 130 + 70))
    assert upsample(np.ones((7, 7)), 224).shape == (224, 224)


def test_xrv_expert_cam_boxes_equal_the_independent_rule(checkpoint):
    path, state = checkpoint
    expert = XrvExpert(path, "densenet121-res224-all")
    image = _image(5, (320, 240))
    boxes = expert.cam_boxes(image, list(LABELS.values()))
    by_code = {b["finding"]: b for b in boxes}
    for label, code in LABELS.items():
        want = _reference_box(state, image, expert.labels.index(label))
        if want is None:
            assert code not in by_code
            continue
        got = by_code[code]
        assert (got["x0"], got["y0"], got["x1"], got["y1"]) == pytest.approx(want, abs=1e-6), code
        assert got["source"] == "cam" and got["cam_fraction"] == 0.5
        assert 0 <= got["x0"] < got["x1"] <= 320 and 0 <= got["y0"] < got["y1"] <= 240
    assert len(boxes) >= 3
    one = next(iter(by_code))
    assert expert.cam_boxes(image, [one]) == [by_code[one]]  # only the findings asked for


@pytest.mark.django_db(transaction=True)
def test_a_draft_carries_cam_boxes_of_the_positive_findings_through_the_runner(tiny_janus_path, checkpoint):
    path, state = checkpoint
    t = make_trial(code="CAM", status=Trial.Status.READING)
    mv = ModelVersion.objects.create(
        name="tiny-janus-CAM", backend=ModelVersion.Backend.JANUS, weights_path=str(tiny_janus_path),
        generation_params={"max_new_tokens": 4, "device": "cpu",
                           "options": {"batch_max": 1, "expert_thresholds": {"pneumothorax": 1.01}},
                           "classifier": {"weights_path": str(path), "device": "cpu",
                                          "options": {"format": "torchxrayvision", "cam_boxes": True}}},
    )
    ArmModelVersion.objects.filter(arm=t["arms"]["ai_assisted"]).update(model_version=mv)
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="CM1")
    add_image(case, 320)
    draft = Draft.objects.create(case=case, model_version=mv)
    assert run_draft(None, draft.pk) == "ready", Draft.objects.get(pk=draft.pk).error
    draft.refresh_from_db()
    positive = draft.parameters["expert"]["positive"]
    assert "pneumothorax" not in positive  # its threshold is above 1: never positive, never boxed
    image = case.images.first()
    first = case_views(case)[0][1]  # the stored image the runner gives the model, and the viewer shows
    expected = {}
    expert_labels = XrvExpert(path, "densenet121-res224-all").labels
    for label, code in LABELS.items():
        if code in positive:
            box = _reference_box(state, first, expert_labels.index(label))
            if box is not None:
                expected[code] = box
    assert expected, "the tiny expert called nothing positive"
    got = {b["finding"]: b for b in draft.boxes}
    assert set(got) == set(expected)
    for code, want in expected.items():
        b = got[code]
        assert (b["x0"], b["y0"], b["x1"], b["y1"]) == pytest.approx(want, abs=1e-6)
        assert b["source"] == "cam" and b["image"] == image.public_id
    assert draft.parameters["boxes_image_size"] == list(first.size)
