"""The backend interface: configuration, result and the abstract backend.

Nothing here imports Django, torch or transformers, so the weight-free retrieval baseline (what the demo
uses) works in an install without the ``inference`` extra.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .grounding import Box, ground_result  # noqa: F401 - Box is part of this module's API (DraftResult.boxes)

#: The trial's default six critical findings (docs/design.md section 3); a trial's findings are data, not code.
DEFAULT_FINDINGS: tuple[str, ...] = (
    "pleural_effusion",
    "pneumothorax",
    "atelectasis",
    "consolidation",
    "cardiomegaly",
    "lung_opacity",
)

#: Human names used in prompts and reports.
FINDING_NAMES: dict[str, str] = {
    "pleural_effusion": "pleural effusion",
    "pneumothorax": "pneumothorax",
    "atelectasis": "atelectasis",
    "consolidation": "consolidation",
    "cardiomegaly": "cardiomegaly",
    "lung_opacity": "lung opacity",
    "support_devices": "support devices",
}

#: Default report style of the trial (what the reader's form expects).
DEFAULT_REPORT_STYLE = (
    "Write a concise chest radiograph report in English with two sections, 'Findings:' and 'Impression:'."
)

#: Prompt template of the ``janus`` backend. Placeholders: ``{style}`` (the trial's report style),
#: ``{probabilities}`` (one line per finding, e.g. ``- pleural effusion: 0.82``, from the expert classifier:
#: the paper's large-small collaboration), ``{findings}`` (comma-separated finding names), ``{context}``
#: (free text from the caller's context, e.g. the indication; may be empty).
DEFAULT_PROMPT_TEMPLATE = (
    "{style}\n"
    "An expert classifier estimated these probabilities for the critical findings "
    "({findings}):\n{probabilities}\n"
    "Confirm or refute each one from the image.{context}"
)


class BackendError(RuntimeError):
    """Base class of the backends' errors."""


class ModelLoadError(BackendError):
    """The model (or its processor) at ``path`` could not be loaded; ``cause`` says why."""

    def __init__(self, path: str | None, cause: str | BaseException):
        self.path = path
        self.cause = cause
        reason = f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else str(cause)
        super().__init__(f"Could not load model from {path!r}: {reason}")


class BackendNotLoaded(BackendError):
    """``generate`` was called before ``load``."""


def resolve_device(device: str = "auto") -> str:
    """``'auto'`` -> ``'cuda'`` when a CUDA device is usable, else ``'cpu'``; anything else is returned as is."""
    if device != "auto":
        return device
    try:
        # Lazy: heavy optional dependency (the demo installs no torch/transformers).
        import torch
    except ImportError:  # the demo install has no torch
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype_name(device: str, dtype: str = "auto") -> str:
    """``'auto'`` -> ``'bfloat16'`` on a CUDA device that supports it (compute capability 8.0+), ``'float16'`` on
    an older one, ``'float32'`` elsewhere (CPU bf16 matmuls are slow and lossy). The choice is recorded per draft."""
    if dtype != "auto":
        return dtype
    if not device.startswith("cuda"):
        return "float32"
    try:
        # Lazy: heavy optional dependency (the demo installs no torch/transformers).
        import torch

        with torch.cuda.device(device):
            return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16"
    except Exception:  # noqa: BLE001 - no usable CUDA here: keep the documented default
        return "bfloat16"


@dataclass
class GenerationParams:
    """Decoding parameters; greedy by default so that a draft is reproducible."""

    max_new_tokens: int = 512  # Janus-Pro-CXR's inference.py
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0


@dataclass
class BackendConfig:
    """What a model version stores to make its drafts (JSON-serialisable through ``to_dict``/``from_dict``).

    - ``weights_path``: a local folder (``janus``: ``save_pretrained`` output; ``classifier``: a checkpoint
      file, see :mod:`inference.backends.classifier`); never a hub id (nothing is downloaded).
    - ``device``: ``'auto'`` (CUDA if available) / ``'cpu'`` / ``'cuda'`` / ``'cuda:1'``; ``dtype``: ``'auto'``
      (bf16 on CUDA, float32 on CPU) or a torch dtype name.
    - ``prompt``: the ``janus`` prompt template, a name (default ``'janus-pro-cxr'``, the published one) or a
      mapping of fields (:func:`inference.backends.prompts.get_template`); ``prompt_template`` is the format
      string of the older ``'cxr-trial-v1'`` template only.
    - ``bank_path``: the retrieval report bank (``None``: the bundled IU X-ray reports).
    - ``k``: neighbours used for the retrieval probabilities.
    - ``classifier``: the expert-classifier config the ``janus`` backend uses for its prompt (``None``: no expert
      model: the draft has no probabilities and the prompt no expert sentence).
    - ``options``: backend-specific extras (kept in the draft's parameters).
    """

    weights_path: str | None = None
    generation: GenerationParams = field(default_factory=GenerationParams)
    prompt: str | dict[str, Any] = "janus-pro-cxr"
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    report_style: str = DEFAULT_REPORT_STYLE
    device: str = "auto"
    dtype: str = "auto"
    findings: tuple[str, ...] = DEFAULT_FINDINGS
    bank_path: str | None = None
    k: int = 10
    max_images: int = 1
    classifier: BackendConfig | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["findings"] = list(self.findings)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BackendConfig:
        """Build from a (possibly partial) dict; generation keys may be nested or at the top level."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        gen_fields = {f.name for f in dataclasses.fields(GenerationParams)}
        gen = dict(data.pop("generation", None) or {})
        for key in list(data):
            if key in gen_fields and key not in known:
                gen[key] = data.pop(key)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown backend config keys: {sorted(unknown)}")
        if "findings" in data:
            data["findings"] = tuple(data["findings"])
        if isinstance(data.get("classifier"), Mapping):
            data["classifier"] = cls.from_dict(data["classifier"])
        return cls(generation=GenerationParams(**gen), **data)

    def cache_key(self) -> str:
        """What identifies a loaded model: everything but the generation settings (given per call), so model
        versions that differ only in how they generate share one copy per process."""
        data = self.to_dict()
        data.pop("generation")
        return json.dumps(data, sort_keys=True, default=str)


@dataclass
class DraftResult:
    """A model's output for one case (docs/design.md "Draft")."""

    findings: str
    impression: str
    text: str
    probabilities: dict[str, float]
    backend: str
    prompt: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    load_s: float = 0.0
    generate_s: float = 0.0
    neighbours: list[str] = field(default_factory=list)
    boxes: list[Box] | None = None

    @property
    def timings(self) -> dict[str, float]:
        return {"load_s": self.load_s, "generate_s": self.generate_s}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what the draft row stores)."""
        return dataclasses.asdict(self)


@dataclass
class GenerationRequest:
    """One item of :meth:`Backend.generate_batch`."""

    images: Sequence[Image.Image]
    findings: Sequence[str] = DEFAULT_FINDINGS
    context: Mapping[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A draft generator. ``load`` once per process, then ``generate`` (or ``generate_batch``) per case.

    ``context`` is a free mapping from the caller; keys the backends read: ``indication`` (str),
    ``report_style`` (overrides the config's), ``seed`` (int, overrides the config's),
    ``finding_probabilities`` (dict, skips the janus backend's own classifier call), ``case_id``.
    """

    name: str = "base"
    label: str = "base"

    def __init__(self) -> None:
        self.config: BackendConfig = BackendConfig()
        self.loaded = False
        self.load_s = 0.0

    def load(self, config: BackendConfig | Mapping[str, Any] | None = None) -> None:
        cfg = config if isinstance(config, BackendConfig) else BackendConfig.from_dict(config)
        start = time.perf_counter()
        self._load(cfg)
        self.config = cfg
        self.load_s = time.perf_counter() - start
        self.loaded = True

    @abstractmethod
    def _load(self, config: BackendConfig) -> None: ...

    @abstractmethod
    def _generate(
        self, images: Sequence[Image.Image], findings: Sequence[str], context: Mapping[str, Any]
    ) -> DraftResult: ...

    def generate(
        self,
        images: Sequence[Image.Image],
        findings: Sequence[str] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> DraftResult:
        if not self.loaded:
            raise BackendNotLoaded(f"{self.name}: call load(config) before generate()")
        if not images:
            raise ValueError("generate() needs at least one image")
        start = time.perf_counter()
        result = self._generate(list(images), tuple(findings or self.config.findings), dict(context or {}))
        ground_result(result, images[0].size, tuple(findings or self.config.findings), self.config.options)
        result.load_s = self.load_s
        if not result.generate_s:
            result.generate_s = time.perf_counter() - start
        return result

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[DraftResult]:
        """Default: one ``generate`` per request. Backends that can batch on the device override it."""
        return [self.generate(r.images, r.findings, r.context) for r in requests]

    def describe(self) -> dict[str, Any]:
        """What to record as the model version's fingerprint (name, label, config, weights hashes...)."""
        return {"backend": self.name, "label": self.label, "config": self.config.to_dict()}


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode (``L``, ``I;16``, ``I``, ``F``, ``RGBA``...) -> 8-bit ``RGB``, windowed to its own range.

    16-bit and float images are min-max scaled to 0..255 first (``Image.convert('RGB')`` would clip them).
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        image = Image.fromarray(scaled.round().astype("uint8"))
    return image.convert("RGB")


def clamp_probability(value: float) -> float:
    value = float(value)
    if value != value:  # NaN
        return 0.0
    return min(1.0, max(0.0, value))


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def weights_sha256(path: str | Path) -> dict[str, str]:
    """SHA-256 of each weight file (by suffix: safetensors, bin, pt, pth, ckpt) of a folder, or of one file.

    Keys are paths relative to ``path`` (the file name for a single file), sorted; read in 1 MiB chunks.
    """
    path = Path(path)
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    )
    digests = {}
    for file in files:
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digests[file.name if file == path else file.relative_to(path).as_posix()] = digest.hexdigest()
    return digests


_CODE_VERSION: str | None = None


def code_version() -> str:
    """The code that made a draft: ``git describe --always --dirty`` of this checkout where git and the
    repository are there, else the installed package version (``cxr-trial x.y.z``), else ``unknown``."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        root = Path(__file__).resolve().parents[2]
        try:
            out = subprocess.run(
                ["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True, text=True,
                timeout=5, check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            _CODE_VERSION = f"git {out}"
        else:
            try:
                _CODE_VERSION = f"cxr-trial {importlib.metadata.version('cxr-trial')}"
            except importlib.metadata.PackageNotFoundError:
                _CODE_VERSION = "unknown"
    return _CODE_VERSION
