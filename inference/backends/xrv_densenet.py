"""DenseNet-121 expert classifiers in torchxrayvision's published checkpoint format, without the package.

torchxrayvision (Cohen et al., MIDL 2022; Apache-2.0) publishes its DenseNet-121 weights as ``*-best.pt`` files:
``torch.save`` of a whole model object, i.e. a pickle naming the package's classes. Loading those with the
package needs torchvision and runs whatever the pickle names. Here:

- :func:`read_xrv_state_dict` reads such a file with a **restricted unpickler**: only torch's tensor rebuilders
  and ``OrderedDict`` are real; every other global the file names (``torchxrayvision.models.DenseNet``,
  ``torch.nn.Conv2d``, ``os.system`` in a hostile file...) becomes an inert record that keeps its state and runs
  nothing. The module tree is then walked for ``_parameters`` and ``_buffers`` (the keys ``state_dict()`` gives).
  A plain state-dict file (``torch.save(model.state_dict())``) is read the same way.
- :class:`XrvDenseNet` is the same architecture with the same parameter names (``features.conv0``,
  ``features.denseblock1.denselayer1.norm1``, ..., ``features.norm5``, ``classifier``) and the same forward:
  features, ReLU, global average pooling, linear, sigmoid, then torchxrayvision's operating-point normalisation
  (``op_norm``: the label's published operating point maps to 0.5).
- :data:`XRV_WEIGHTS` holds the published label order and operating points of the weights (data from
  torchxrayvision's ``models.py``, Apache-2.0), keyed by the package's weight names.

Input: one grey channel, 224x224, pixel values scaled from [0, 255] to [-1024, 1024]
(``xrv.datasets.normalize(img, 255)``), centre-cropped to a square first (``XRayCenterCrop``).
"""
from __future__ import annotations

import io
import math
import pickle
import types
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .cam import DEFAULT_FRACTION, cam_box, class_activation_maps, to_image_box, upsample

#: Label order and operating points of torchxrayvision's DenseNet-121 weights ("" = the weights do not predict it).
XRV_LABELS_18 = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema", "Fibrosis", "Effusion",
    "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass", "Hernia", "Lung Lesion", "Fracture",
    "Lung Opacity", "Enlarged Cardiomediastinum",
)
_NAN = float("nan")
XRV_WEIGHTS: dict[str, dict[str, Any]] = {
    "densenet121-res224-all": {
        "labels": XRV_LABELS_18,
        "op_threshs": (0.07422872, 0.038290843, 0.09814756, 0.0098118475, 0.023601074, 0.0022490358, 0.010060724,
                       0.103246614, 0.056810737, 0.026791653, 0.050318155, 0.023985857, 0.01939503, 0.042889766,
                       0.053369623, 0.035975814, 0.20204692, 0.05015312),
    },
    "densenet121-res224-chex": {
        "labels": ("Atelectasis", "Consolidation", "", "Pneumothorax", "Edema", "", "", "Effusion", "Pneumonia", "",
                   "Cardiomegaly", "", "", "", "Lung Lesion", "Fracture", "Lung Opacity",
                   "Enlarged Cardiomediastinum"),
        "op_threshs": (0.1988969, 0.05710573, _NAN, 0.0531293, 0.1435217, _NAN, _NAN, 0.27212676, 0.07749717, _NAN,
                       0.19712369, _NAN, _NAN, _NAN, 0.09932402, 0.09273402, 0.3270967, 0.10888247),
    },
    "densenet121-res224-mimic_ch": {
        "labels": ("Atelectasis", "Consolidation", "", "Pneumothorax", "Edema", "", "", "Effusion", "Pneumonia", "",
                   "Cardiomegaly", "", "", "", "Lung Lesion", "Fracture", "Lung Opacity",
                   "Enlarged Cardiomediastinum"),
        "op_threshs": (0.09121389, 0.010573786, _NAN, 0.005023008, 0.003698257, _NAN, _NAN, 0.08001232, 0.037242252,
                       _NAN, 0.05006329, _NAN, _NAN, _NAN, 0.019866971, 0.03823637, 0.11303808, 0.0069147074),
    },
}

#: torchxrayvision label -> the trial's finding code (CheXpert-style names; docs/janus.md). Trials may pass another.
DEFAULT_LABEL_MAP: dict[str, str] = {
    "Effusion": "pleural_effusion",
    "Pneumothorax": "pneumothorax",
    "Atelectasis": "atelectasis",
    "Consolidation": "consolidation",
    "Cardiomegaly": "cardiomegaly",
    "Lung Opacity": "lung_opacity",
}

#: The pickle globals that are real: tensor rebuilding only (what torch's own weights-only loader allows).
_REAL_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
}


class XrvCheckpointError(ValueError):
    """The file is not a torchxrayvision-format DenseNet checkpoint (the message says what is wrong)."""


class _Inert:
    """Stands in for any class or function a checkpoint names: records arguments and state, runs nothing."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE: the named callable "called"
        self.args = args

    def __setstate__(self, state: Any) -> None:  # BUILD
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEMS on a stand-in dict subclass
        self.__dict__[key] = value

    def append(self, value: Any) -> None:  # APPENDS on a stand-in list subclass
        self.__dict__.setdefault("_items", []).append(value)

    def extend(self, values: Any) -> None:
        for value in values:
            self.append(value)


def _inert_class(qualname: str) -> type:
    # A class, not an instance: NEWOBJ calls cls.__new__(cls), which then makes a plain _Inert record.
    return type("Inert", (_Inert,), {"qualname": qualname})


def _reconstructor(cls: Any, base: Any, state: Any) -> _Inert:
    # copyreg._reconstructor(cls, object, None): how protocol 0/1 pickles a plain object.
    return cls() if isinstance(cls, type) and issubclass(cls, _Inert) else _Inert()


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _REAL_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("copyreg", "_reconstructor"):
            return _reconstructor
        return _inert_class(f"{module}.{name}")


#: Passed to torch.load as its pickle module: torch's loader subclasses our Unpickler (storages stay torch's).
restricted_pickle = types.ModuleType("cxr_trial_restricted_pickle")
restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
restricted_pickle.__name__ = "pickle"


def _module_state(obj: Any) -> dict | None:
    """The instance dict of a pickled nn.Module record (``_parameters``/``_buffers``/``_modules``), else None."""
    state = getattr(obj, "state", None) if isinstance(obj, _Inert) else None
    if isinstance(state, tuple) and len(state) == 2:  # (dict, slotstate)
        state = state[0]
    return state if isinstance(state, dict) and "_modules" in state else None


def _walk(obj: Any, prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    if depth > 64:
        raise XrvCheckpointError("the module tree is deeper than any DenseNet")
    state = _module_state(obj)
    if state is None:
        raise XrvCheckpointError("the checkpoint holds an object that is not a module or a state dict")
    non_persistent = state.get("_non_persistent_buffers_set")
    non_persistent = non_persistent if isinstance(non_persistent, set) else set()
    for kind in ("_parameters", "_buffers"):
        for name, tensor in (state.get(kind) or {}).items():
            if tensor is not None and not (kind == "_buffers" and name in non_persistent):
                out[prefix + name] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _walk(child, f"{prefix}{name}.", out, depth + 1)


def read_xrv_state_dict(path: str | Path) -> OrderedDict:
    """The tensors of a torchxrayvision checkpoint (a whole pickled model or a state dict), read without running
    any code the file names. Raises :class:`XrvCheckpointError` for anything else."""
    # torch is heavy and optional (the demo installs none).
    import torch

    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise XrvCheckpointError("not a torch.save file (expected the zip format of torch >= 1.6)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle)
    except (pickle.UnpicklingError, EOFError, RuntimeError, AttributeError, TypeError, ValueError) as exc:
        raise XrvCheckpointError(f"unreadable checkpoint: {exc}") from exc
    if isinstance(obj, Mapping) and not isinstance(obj, _Inert):
        tensors = obj.get("state_dict", obj) if "state_dict" in obj else obj
        if all(isinstance(v, torch.Tensor) for v in tensors.values()):
            return OrderedDict(tensors)
        raise XrvCheckpointError("the dict in the checkpoint is not a state dict")
    out: OrderedDict = OrderedDict()
    _walk(obj, "", out)
    return out


def build_xrv_densenet(num_classes: int, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                       num_init_features: int = 64, bn_size: int = 4):
    """torchxrayvision's DenseNet (DenseNet-121 by default), one input channel, same parameter names."""
    # torch is heavy and optional (the demo installs none): imported where a model is built.
    import torch
    from torch import nn

    def dense_layer(n_in: int) -> nn.Sequential:
        return nn.Sequential(OrderedDict([
            ("norm1", nn.BatchNorm2d(n_in)), ("relu1", nn.ReLU(inplace=True)),
            ("conv1", nn.Conv2d(n_in, bn_size * growth_rate, 1, bias=False)),
            ("norm2", nn.BatchNorm2d(bn_size * growth_rate)), ("relu2", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)),
        ]))

    class DenseBlock(nn.ModuleDict):
        def forward(self, x):
            for layer in self.values():
                x = torch.cat([x, layer(x)], 1)
            return x

    features = nn.Sequential(OrderedDict([
        ("conv0", nn.Conv2d(1, num_init_features, 7, stride=2, padding=3, bias=False)),
        ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True)),
        ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
    ]))
    n = num_init_features
    for i, n_layers in enumerate(block_config):
        features.add_module(f"denseblock{i + 1}", DenseBlock(
            {f"denselayer{j + 1}": dense_layer(n + j * growth_rate) for j in range(n_layers)}))
        n += n_layers * growth_rate
        if i != len(block_config) - 1:
            features.add_module(f"transition{i + 1}", nn.Sequential(OrderedDict([
                ("norm", nn.BatchNorm2d(n)), ("relu", nn.ReLU(inplace=True)),
                ("conv", nn.Conv2d(n, n // 2, 1, bias=False)), ("pool", nn.AvgPool2d(2, stride=2)),
            ])))
            n //= 2
    features.add_module("norm5", nn.BatchNorm2d(n))

    class XrvDenseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = features
            self.classifier = nn.Linear(n, num_classes)

        def forward(self, x):
            out = torch.relu(self.features(x))
            out = torch.nn.functional.adaptive_avg_pool2d(out, 1).flatten(1)
            return self.classifier(out)

    return XrvDenseNet()


def densenet_shape(state: Mapping[str, Any]) -> dict[str, Any]:
    """Architecture sizes read from the tensors (so a tiny test model and DenseNet-121 load the same way)."""
    blocks = sorted({k.split(".")[1] for k in state if k.startswith("features.denseblock")},
                    key=lambda b: int(b.removeprefix("denseblock")))
    if not blocks or "classifier.weight" not in state or "features.conv0.weight" not in state:
        raise XrvCheckpointError("the tensors are not a torchxrayvision DenseNet's")
    block_config = [len({k.split(".")[2] for k in state if k.startswith(f"features.{b}.")}) for b in blocks]
    conv2 = state["features.denseblock1.denselayer1.conv2.weight"]
    conv1 = state["features.denseblock1.denselayer1.conv1.weight"]
    growth = int(conv2.shape[0])
    return {"num_classes": int(state["classifier.weight"].shape[0]), "growth_rate": growth,
            "block_config": tuple(block_config), "num_init_features": int(state["features.conv0.weight"].shape[0]),
            "bn_size": int(conv1.shape[0]) // growth}


def op_norm(probs: np.ndarray, op_threshs: Sequence[float]) -> np.ndarray:
    """torchxrayvision's operating-point normalisation: p < t maps to p / 2t, else to 1 - (1 - p) / (2 (1 - t));
    labels without an operating point (NaN) give 0.5."""
    t = np.asarray(op_threshs, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    below = p < t
    out = np.where(below, p / (2 * t), 1.0 - (1.0 - p) / (2 * (1 - t)))
    return np.where(np.isnan(t), 0.5, out)


def xrv_input(image: Image.Image, size: int = 224) -> np.ndarray:
    """One image as the weights expect it: grey, centre-cropped square, ``size`` pixels, values in [-1024, 1024]."""
    grey = image.convert("L")
    w, h = grey.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    grey = grey.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(grey, dtype=np.float32)
    return (arr / 255.0) * 2048.0 - 1024.0


class XrvExpert:
    """A loaded torchxrayvision DenseNet: probabilities per trial finding from images."""

    def __init__(self, path: str | Path, weights_name: str, label_map: Mapping[str, str] | None = None,
                 device: str = "cpu") -> None:
        if weights_name not in XRV_WEIGHTS:
            raise XrvCheckpointError(f"unknown torchxrayvision weights {weights_name!r}; known: "
                                     + ", ".join(sorted(XRV_WEIGHTS)))
        meta = XRV_WEIGHTS[weights_name]
        state = read_xrv_state_dict(path)
        state.pop("op_threshs", None)  # the published operating points come from XRV_WEIGHTS
        shape = densenet_shape(state)
        if shape["num_classes"] != len(meta["labels"]):
            raise XrvCheckpointError(f"{shape['num_classes']} outputs, but {weights_name} has "
                                     f"{len(meta['labels'])} labels")
        model = build_xrv_densenet(**shape)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise XrvCheckpointError(f"tensors do not fit the architecture: {exc}") from exc
        self.model = model.to(device).eval()
        self.device = device
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.op_threshs: tuple[float, ...] = tuple(meta["op_threshs"])
        self.label_map = dict(label_map if label_map is not None else DEFAULT_LABEL_MAP)
        unknown = set(self.label_map) - set(self.labels)
        if unknown:
            raise XrvCheckpointError(f"label map names labels these weights lack: {', '.join(sorted(unknown))}")

    def probabilities(self, images: Sequence[Image.Image]) -> dict[str, float]:
        """Per trial finding: the op-normalised probability averaged over the views."""
        # torch is heavy and optional (the demo installs none).
        import torch

        batch = torch.from_numpy(np.stack([xrv_input(im) for im in images])[:, None]).to(self.device)
        with torch.inference_mode():
            raw = torch.sigmoid(self.model(batch).float()).cpu().numpy()
        normed = op_norm(raw, self.op_threshs).mean(axis=0)
        by_label = dict(zip(self.labels, normed.tolist(), strict=True))
        return {code: float(by_label[label]) for label, code in self.label_map.items()
                if label and not math.isnan(by_label[label])}

    def cam_boxes(self, image: Image.Image, codes: Sequence[str], fraction: float = DEFAULT_FRACTION,
                  size: int = 224) -> list[dict[str, Any]]:
        """One box per trial finding in ``codes`` (that these weights predict) from the label's class-activation map
        on ``image`` (inference/backends/cam.py states the rule), in pixels of ``image``; ``source`` "cam"."""
        # torch is heavy and optional (the demo installs none).
        import torch

        x = torch.from_numpy(xrv_input(image, size)[None, None]).to(self.device)
        cams, _logits = class_activation_maps(self.model, x)
        index = {label: i for i, label in enumerate(self.labels) if label}
        boxes = []
        for label, code in self.label_map.items():
            if code not in codes or label not in index:
                continue
            heat = upsample(cams[0, index[label]], size)
            box = cam_box(heat, fraction)
            if box is None:
                continue
            x0, y0, x1, y1 = to_image_box(box, image.size, size)
            boxes.append({"finding": code, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "score": 1.0,
                          "label": "expert model's activation map", "reasoning": "", "source": "cam",
                          "cam_fraction": fraction})
        return boxes


def save_state_dict_bytes(state: Mapping[str, Any]) -> bytes:
    """A state dict as torch.save bytes (used by tests and the export step of docs/janus.md)."""
    # torch is heavy and optional (the demo installs none).
    import torch

    buf = io.BytesIO()
    torch.save(OrderedDict(state), buf)
    return buf.getvalue()
