"""Tiny random DenseNet checkpoints in torchxrayvision's published format, and an independent forward, shared by the
expert, CAM-box, calibration and browser tests (issues 16 and 21).

The checkpoints are written the way torchxrayvision's ``*-best.pt`` files are made: ``torch.save`` of a whole model
whose classes live in ``torchxrayvision.models`` (a stand-in module registered only while saving, so loading proves
the package is not needed). The reference forward is torchxrayvision's DenseNet written from its published
definition with functional ops on the tensors, independent of ``inference.backends.xrv_densenet``.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from inference.backends.xrv_densenet import build_xrv_densenet

TINY = {"growth_rate": 4, "block_config": (1, 2, 1, 1), "num_init_features": 8, "bn_size": 2}


def randomise_norms(model) -> None:
    # Random running statistics, so the batch norms are not identities and a misplaced one changes the output.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def save_like_torchxrayvision(model, path) -> None:
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


def write_tiny_xrv_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Writes a tiny 18-label DenseNet (seed 0, random norms) to ``path``; returns a copy of its state dict."""
    torch.manual_seed(0)
    model = build_xrv_densenet(18, **TINY).eval()
    randomise_norms(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    save_like_torchxrayvision(model, path)
    return state


def reference_features(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The DenseNet's final ReLU'd feature maps, from its definition with functional ops on the tensors."""
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
    return F.relu(bn("features.norm5", t))


def reference_forward(state: dict, x: torch.Tensor) -> torch.Tensor:
    """torchxrayvision's DenseNet forward: the features, global average pooling, the linear classifier (logits)."""
    t = F.adaptive_avg_pool2d(reference_features(state, x), 1).flatten(1)
    return F.linear(t, state["classifier.weight"], state["classifier.bias"])
