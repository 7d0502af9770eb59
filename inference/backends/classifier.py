"""``classifier``: the expert classifier of the findings (the "small" model of the large-small collaboration).

Two modes, recorded in the draft's ``parameters['classifier_mode']``:

``'weights'`` -- ``config.weights_path`` names a local checkpoint file, format ``cxr-trial-classifier/1``:
    a ``torch.save`` of a plain dict (loaded with ``torch.load(weights_only=True)``, so no pickled code runs)::

        {"format": "cxr-trial-classifier/1",
         "findings": ["pleural_effusion", ...],      # output order of the logits
         "image_size": 224,                          # square grey input
         "mean": 0.5, "std": 0.25,                   # input normalisation after scaling to [0, 1]
         "arch": {"width": 16, "depth": 4},          # SmallCXRNet's hyper-parameters
         "state_dict": {...}}                        # SmallCXRNet weights

    :class:`SmallCXRNet` is a small CNN (``depth`` blocks of conv3x3-BN-ReLU-maxpool, channels
    ``width * 2**i``, global average pooling, one linear layer to one logit per finding; sigmoid gives the
    probabilities). :func:`save_checkpoint` writes this format. The probabilities are the sigmoid of the logits
    averaged over the case's views (up to ``config.max_images``).

``'torchxrayvision'`` -- ``config.options['format'] == 'torchxrayvision'``: ``weights_path`` is one of
    torchxrayvision's published DenseNet-121 ``*-best.pt`` files (or its state dict), placed locally by the user;
    ``options['xrv_weights']`` names which (default ``'densenet121-res224-all'``: label order and operating
    points), ``options['label_map']`` maps its labels to the trial's findings (default
    :data:`inference.backends.xrv_densenet.DEFAULT_LABEL_MAP`). Read without the package and without running
    pickled code (:mod:`inference.backends.xrv_densenet`). ``options['cam_boxes']`` (default off) adds a box per
    positive finding from its class-activation map, ``options['cam_fraction']`` the threshold
    (:mod:`inference.backends.cam`, docs/calibration.md).

``'retrieval-fallback'`` -- no ``weights_path``: a deterministic fallback, the label frequencies of the
    retrieval baseline's k nearest neighbours (distance-weighted, shrunk to the bank prevalence; see
    :meth:`inference.reportbank.ReportBank.query`), using the same bank settings (``config.bank_path``). With a
    bank that has no images (the bundled IU reports alone) it gives **no** probabilities (hash-picked
    neighbours carry no image information); ``parameters['note']`` says so.

The draft's text is a templated summary of the probabilities (``Findings:`` one sentence per finding at or above
``config.options['threshold']``, default 0.5); the classifier is mainly used through ``probabilities``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .base import (
    FINDING_NAMES,
    Backend,
    BackendConfig,
    DraftResult,
    ModelLoadError,
    clamp_probability,
    resolve_device,
    to_rgb,
    weights_sha256,
)
from .cam import DEFAULT_FRACTION
from .retrieval import RetrievalBackend
from .xrv_densenet import XrvCheckpointError, XrvExpert

CHECKPOINT_FORMAT = "cxr-trial-classifier/1"
LABEL = "expert classifier"


def _torch():
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import torch

    return torch


def build_small_cxr_net(n_outputs: int, width: int = 16, depth: int = 4):
    """The CNN of the checkpoint format (see module docstring)."""
    torch = _torch()
    nn = torch.nn

    layers: list[Any] = []
    channels_in = 1
    for i in range(depth):
        channels_out = width * 2**i
        layers += [
            nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels_in = channels_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels_in, n_outputs)]
    return nn.Sequential(*layers)


# The class name the docs use; a function building an nn.Sequential keeps the state_dict keys simple.
SmallCXRNet = build_small_cxr_net


def save_checkpoint(
    model: Any,
    path: str | Path,
    findings: Sequence[str],
    image_size: int = 224,
    width: int = 16,
    depth: int = 4,
    mean: float = 0.5,
    std: float = 0.25,
) -> Path:
    """Write ``model`` (a :func:`build_small_cxr_net`) in the ``cxr-trial-classifier/1`` format."""
    torch = _torch()
    path = Path(path)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "findings": list(findings),
            "image_size": int(image_size),
            "mean": float(mean),
            "std": float(std),
            "arch": {"width": int(width), "depth": int(depth)},
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )
    return path


class ClassifierBackend(Backend):
    name = "classifier"
    label = LABEL

    def __init__(self) -> None:
        super().__init__()
        self.model: Any = None
        self.meta: dict[str, Any] = {}
        self.retrieval: RetrievalBackend | None = None
        self.device = "cpu"
        self.weights_sha256: dict[str, str] = {}
        self.xrv: XrvExpert | None = None

    @property
    def mode(self) -> str:
        if self.xrv is not None:
            return "torchxrayvision"
        return "weights" if self.model is not None else "retrieval-fallback"

    def _load_xrv(self, config: BackendConfig, path: Path) -> None:
        options = config.options or {}
        try:
            self.xrv = XrvExpert(path, str(options.get("xrv_weights", "densenet121-res224-all")),
                                 options.get("label_map"), device=resolve_device(config.device))
        except XrvCheckpointError as exc:
            raise ModelLoadError(str(path), exc) from exc
        self.weights_sha256 = weights_sha256(path)

    def _load(self, config: BackendConfig) -> None:
        if not config.weights_path:
            self.retrieval = RetrievalBackend()
            self.retrieval.load(
                BackendConfig(bank_path=config.bank_path, k=config.k, max_images=config.max_images)
            )
            return
        path = Path(config.weights_path)
        if not path.is_file():
            raise ModelLoadError(str(path), "classifier checkpoint file not found")
        if (config.options or {}).get("format") == "torchxrayvision":
            self._load_xrv(config, path)
            return
        torch = _torch()
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a load error
            raise ModelLoadError(str(path), exc) from exc
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ModelLoadError(str(path), f"not a {CHECKPOINT_FORMAT} checkpoint")
        try:
            findings = [str(f) for f in ckpt["findings"]]
            arch = dict(ckpt.get("arch", {}))
            model = build_small_cxr_net(len(findings), int(arch.get("width", 16)), int(arch.get("depth", 4)))
            model.load_state_dict(ckpt["state_dict"])
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(str(path), exc) from exc
        self.device = resolve_device(config.device)
        self.model = model.to(self.device).eval()
        self.meta = {
            "findings": findings,
            "image_size": int(ckpt.get("image_size", 224)),
            "mean": float(ckpt.get("mean", 0.5)),
            "std": float(ckpt.get("std", 0.25)),
        }
        self.weights_sha256 = weights_sha256(path)

    def predict(
        self, images: Sequence[Image.Image], findings: Sequence[str]
    ) -> tuple[dict[str, float], dict]:
        """Probabilities of ``findings`` (codes this classifier knows) and parameters to record."""
        views = list(images)[: max(1, self.config.max_images)]
        if self.xrv is not None:
            known = self.xrv.probabilities(views)
            return {c: clamp_probability(known[c]) for c in findings if c in known}, {
                "classifier_mode": self.mode, "weights_sha256": self.weights_sha256,
                "xrv_weights": str((self.config.options or {}).get("xrv_weights", "densenet121-res224-all")),
            }
        if self.model is None:
            assert self.retrieval is not None
            result = self.retrieval.retrieve(views, findings)
            info = {
                "classifier_mode": self.mode,
                "retrieval_mode": result.mode,
                "neighbours": [n.entry.id for n in result.neighbours],
                "note": "k-NN label frequencies of the retrieval baseline"
                + (" (hash-picked: the bank has no images)" if result.mode == "hash" else ""),
            }
            if result.mode == "hash":  # no image information: give none rather than hash-derived numbers
                info["note"] = "no probabilities: no classifier weights and the retrieval bank has no images"
                return {}, info
            return {c: clamp_probability(p) for c, p in result.probabilities.items() if c in findings}, info

        torch = _torch()
        size = self.meta["image_size"]
        batch = []
        for image in views:
            grey = to_rgb(image).convert("L").resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(grey, dtype=np.float32) / 255.0
            batch.append((arr - self.meta["mean"]) / self.meta["std"])
        tensor = torch.from_numpy(np.stack(batch)[:, None]).to(self.device)
        with torch.inference_mode():
            probs = torch.sigmoid(self.model(tensor).float()).mean(dim=0).cpu().tolist()
        known = dict(zip(self.meta["findings"], probs, strict=True))
        return {c: clamp_probability(known[c]) for c in findings if c in known}, {
            "classifier_mode": self.mode,
            "weights_sha256": self.weights_sha256,
        }

    def cam_boxes(self, image: Image.Image, codes: Sequence[str]) -> list[dict[str, Any]]:
        """Class-activation-map boxes of ``codes`` on ``image`` (inference/backends/cam.py), in its pixels, when
        ``options['cam_boxes']`` is on and the expert is a torchxrayvision DenseNet; else none.
        ``options['cam_fraction']``: the share of the map's maximum a box encloses (default 0.5)."""
        options = self.config.options or {}
        if self.xrv is None or not options.get("cam_boxes") or not codes:
            return []
        return self.xrv.cam_boxes(image, codes, float(options.get("cam_fraction", DEFAULT_FRACTION)))

    def _generate(
        self, images: Sequence[Image.Image], findings: Sequence[str], context: Mapping[str, Any]
    ) -> DraftResult:
        start = time.perf_counter()
        probs, info = self.predict(images, findings)
        threshold = float(self.config.options.get("threshold", 0.5))
        positives = [FINDING_NAMES.get(c, c.replace("_", " ")) for c, p in probs.items() if p >= threshold]
        boxes = self.cam_boxes(images[0], [c for c, p in probs.items() if p >= threshold])
        if boxes:
            info = {**info, "boxes_image_size": list(images[0].size)}
        if not probs:
            findings_text, impression = "", "No expert classifier output."
        elif positives:
            findings_text = " ".join(f"Probable {name}." for name in positives)
            impression = ", ".join(positives).capitalize() + "."
        else:
            findings_text, impression = "No critical finding detected.", "No critical finding."
        return DraftResult(
            findings=findings_text,
            impression=impression,
            text=f"Findings: {findings_text}\nImpression: {impression}",
            probabilities=probs,
            backend=LABEL if self.model is not None else f"{LABEL} (retrieval fallback)",
            parameters={
                "backend": self.name,
                "threshold": threshold,
                "unknown_findings": [c for c in findings if c not in probs],
                **info,
            },
            generate_s=time.perf_counter() - start,
            neighbours=list(info.get("neighbours", [])),
            boxes=boxes,
        )

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update({"mode": self.mode, "weights_sha256": self.weights_sha256, **self.meta})
        return info
