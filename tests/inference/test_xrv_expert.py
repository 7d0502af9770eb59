"""A DenseNet expert in torchxrayvision's published checkpoint format (issue 16, item 3), without the package.

The tests write tiny random checkpoints the way torchxrayvision's ``*-best.pt`` files are made: ``torch.save`` of
a whole model whose classes live in ``torchxrayvision.models`` (a stand-in module registered only while saving,
so loading proves the package is not needed). The forward is checked against an independent functional
implementation of torchxrayvision's DenseNet written here from its published definition.
"""
from __future__ import annotations

import math
import os
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from inference.backends import BackendConfig, ModelLoadError, get_backend
from inference.backends.xrv_densenet import (
    XRV_WEIGHTS,
    XrvCheckpointError,
    build_xrv_densenet,
    op_norm,
    read_xrv_state_dict,
    xrv_input,
)

TINY = {"growth_rate": 4, "block_config": (1, 2, 1, 1), "num_init_features": 8, "bn_size": 2}
FINDINGS = ("pleural_effusion", "pneumothorax", "atelectasis", "consolidation", "cardiomegaly", "lung_opacity")


def _randomise_norms(model) -> None:
    # Random running statistics, so the batch norms are not identities and a misplaced one changes the output.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _save_like_torchxrayvision(model, path) -> None:
    """``torch.save(model)`` with the root and dense blocks named as torchxrayvision's classes."""
    pkg, mod = types.ModuleType("torchxrayvision"), types.ModuleType("torchxrayvision.models")
    root = type("DenseNet", (type(model),), {"__module__": "torchxrayvision.models"})
    block = type("_DenseBlock", (type(model.features.denseblock1),), {"__module__": "torchxrayvision.models"})
    mod.DenseNet, mod._DenseBlock = root, block
    sys.modules["torchxrayvision"], sys.modules["torchxrayvision.models"] = pkg, mod
    try:
        model.__class__ = root
        for name, child in model.features.named_children():
            if name.startswith("denseblock"):
                child.__class__ = block
        model.register_buffer("op_threshs", None)  # as the package's constructor does
        torch.save(model, path)
    finally:
        del sys.modules["torchxrayvision"], sys.modules["torchxrayvision.models"]


@pytest.fixture
def xrv_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_xrv_densenet(18, **TINY).eval()
    _randomise_norms(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"
    _save_like_torchxrayvision(model, path)
    return path, state


def _reference_forward(state: dict, x: torch.Tensor) -> torch.Tensor:
    """torchxrayvision's DenseNet forward, written from its definition with functional ops on the tensors."""
    def bn(prefix, t):
        return F.batch_norm(t, state[prefix + ".running_mean"], state[prefix + ".running_var"],
                            state[prefix + ".weight"], state[prefix + ".bias"], training=False, eps=1e-5)

    t = F.conv2d(x, state["features.conv0.weight"], stride=2, padding=3)
    t = F.max_pool2d(F.relu(bn("features.norm0", t)), 3, stride=2, padding=1)
    for b in range(1, 5):
        j = 1
        while f"features.denseblock{b}.denselayer{j}.conv1.weight" in state:
            p = f"features.denseblock{b}.denselayer{j}"
            new = F.conv2d(F.relu(bn(p + ".norm1", t)), state[p + ".conv1.weight"])
            new = F.conv2d(F.relu(bn(p + ".norm2", new)), state[p + ".conv2.weight"], padding=1)
            t = torch.cat([t, new], 1)
            j += 1
        if b < 4:
            p = f"features.transition{b}"
            t = F.avg_pool2d(F.conv2d(F.relu(bn(p + ".norm", t)), state[p + ".conv.weight"]), 2, stride=2)
    t = F.relu(bn("features.norm5", t))
    t = F.adaptive_avg_pool2d(t, 1).flatten(1)
    return F.linear(t, state["classifier.weight"], state["classifier.bias"])


def test_a_whole_model_checkpoint_is_read_without_the_package(xrv_checkpoint):
    path, state = xrv_checkpoint
    assert "torchxrayvision" not in sys.modules
    read = read_xrv_state_dict(path)
    assert set(read) == set(state)  # op_threshs was None: not a tensor, not in the state dict
    assert all(torch.equal(read[k], state[k]) for k in state)


def test_the_classifier_gives_torchxrayvision_probabilities_per_trial_finding(xrv_checkpoint):
    path, state = xrv_checkpoint
    backend = get_backend("classifier")
    backend.load(BackendConfig(weights_path=str(path), device="cpu", findings=FINDINGS,
                               options={"format": "torchxrayvision", "xrv_weights": "densenet121-res224-all"}))
    image = Image.fromarray((np.random.default_rng(3).random((300, 260)) * 255).astype(np.uint8))
    draft = backend.generate([image], FINDINGS)
    assert draft.parameters["classifier_mode"] == "torchxrayvision"
    assert draft.parameters["weights_sha256"]

    # Reference: crop/scale as xrv.datasets (values in [-1024, 1024]), functional forward, sigmoid, op_norm.
    x = torch.from_numpy(xrv_input(image))[None, None]
    assert float(x.min()) >= -1024 and float(x.max()) <= 1024
    raw = torch.sigmoid(_reference_forward(state, x))[0].numpy()
    meta = XRV_WEIGHTS["densenet121-res224-all"]
    labels = dict(zip(meta["labels"], zip(raw, meta["op_threshs"], strict=True), strict=True))
    expected = {}
    for label, code in {"Effusion": "pleural_effusion", "Pneumothorax": "pneumothorax",
                        "Atelectasis": "atelectasis", "Consolidation": "consolidation",
                        "Cardiomegaly": "cardiomegaly", "Lung Opacity": "lung_opacity"}.items():
        p, t = labels[label]
        expected[code] = p / (2 * t) if p < t else 1 - (1 - p) / (2 * (1 - t))
    assert draft.probabilities == pytest.approx(expected, abs=1e-5)


def test_op_norm_puts_each_operating_point_at_one_half():
    t = [0.1, 0.3, math.nan]
    assert op_norm([0.1, 0.3, 0.9], t).tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert op_norm([0.05, 0.65, 0.2], t).tolist() == pytest.approx([0.25, 0.75, 0.5])


def test_a_state_dict_file_loads_too(tmp_path, xrv_checkpoint):
    _, state = xrv_checkpoint
    path = tmp_path / "state.pt"
    torch.save(state, path)
    read = read_xrv_state_dict(path)
    assert all(torch.equal(read[k], state[k]) for k in state)


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("nested", [False, True])
def test_a_hostile_pickle_runs_nothing_and_is_refused(tmp_path, nested):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"features": _Hostile(marker)} if nested else _Hostile(marker), path)
    with pytest.raises(XrvCheckpointError):
        read_xrv_state_dict(path)
    assert not marker.exists()
    backend = get_backend("classifier")
    with pytest.raises(ModelLoadError):
        backend.load(BackendConfig(weights_path=str(path), device="cpu", options={"format": "torchxrayvision"}))
    assert not marker.exists()


def test_wrong_weights_name_or_label_map_is_a_load_error(xrv_checkpoint):
    path, _ = xrv_checkpoint
    for options in ({"format": "torchxrayvision", "xrv_weights": "densenet121-res224-unknown"},
                    {"format": "torchxrayvision", "label_map": {"Pleural Effusion": "pleural_effusion"}}):
        with pytest.raises(ModelLoadError):
            get_backend("classifier").load(BackendConfig(weights_path=str(path), device="cpu", options=options))
