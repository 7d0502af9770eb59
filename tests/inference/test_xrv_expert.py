"""A DenseNet expert in torchxrayvision's published checkpoint format (issue 16, item 3), without the package.

The tests write tiny random checkpoints the way torchxrayvision's ``*-best.pt`` files are made, and check the
forward against an independent functional implementation of torchxrayvision's DenseNet
(both in ``tests/inference/xrv_checkpoint.py``).
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from inference.backends import BackendConfig, ModelLoadError, get_backend
from inference.backends.xrv_densenet import (
    XRV_WEIGHTS,
    XrvCheckpointError,
    op_norm,
    read_xrv_state_dict,
    xrv_input,
)
from tests.inference.xrv_checkpoint import reference_forward, write_tiny_xrv_checkpoint

FINDINGS = ("pleural_effusion", "pneumothorax", "atelectasis", "consolidation", "cardiomegaly", "lung_opacity")


@pytest.fixture
def xrv_checkpoint(tmp_path):
    path = tmp_path / "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"
    return path, write_tiny_xrv_checkpoint(path)


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
    raw = torch.sigmoid(reference_forward(state, x))[0].numpy()
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
