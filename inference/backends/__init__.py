"""Django-free draft backends (docs/design.md section 6).

>>> backend = load_backend("retrieval", {"k": 10})          # loaded once per process (cached)
>>> draft = backend.generate([pil_image], ["pleural_effusion", ...], {"case_id": "C001"})
>>> draft.text, draft.probabilities, draft.backend           # ..., {...}, 'retrieval baseline'

Backends: ``'janus'`` (:class:`~inference.backends.janus.JanusBackend`, needs torch + transformers and a local
``save_pretrained`` folder), ``'retrieval'`` (:class:`~inference.backends.retrieval.RetrievalBackend`, weight-free,
the demo's), ``'classifier'`` (:class:`~inference.backends.classifier.ClassifierBackend`). Modules are imported
lazily, so the retrieval baseline never imports torch.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import Any

from .base import (
    DEFAULT_FINDINGS,
    Backend,
    BackendConfig,
    BackendError,
    BackendNotLoaded,
    Box,
    DraftResult,
    GenerationParams,
    GenerationRequest,
    ModelLoadError,
    weights_sha256,
)

BACKENDS: dict[str, str] = {
    "janus": "inference.backends.janus:JanusBackend",
    "retrieval": "inference.backends.retrieval:RetrievalBackend",
    "classifier": "inference.backends.classifier:ClassifierBackend",
}

_cache: dict[tuple[str, str], Backend] = {}
_lock = threading.Lock()


def backend_class(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise BackendError(f"Unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def get_backend(name: str) -> Backend:
    """A new, unloaded backend instance for ``name`` (``'janus'``, ``'retrieval'``, ``'classifier'``)."""
    return backend_class(name)()


def load_backend(name: str, config: BackendConfig | Mapping[str, Any] | None = None) -> Backend:
    """The process-wide loaded backend for (name, config): loaded on first use, then reused (worker processes
    call this per task; the model is loaded once)."""
    cfg = config if isinstance(config, BackendConfig) else BackendConfig.from_dict(config)
    key = (name, cfg.cache_key())
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            backend = get_backend(name)
            backend.load(cfg)
            _cache[key] = backend
        return backend


def clear_cache() -> None:
    with _lock:
        _cache.clear()


__all__ = [
    "BACKENDS",
    "DEFAULT_FINDINGS",
    "Backend",
    "BackendConfig",
    "BackendError",
    "BackendNotLoaded",
    "Box",
    "DraftResult",
    "GenerationParams",
    "GenerationRequest",
    "ModelLoadError",
    "backend_class",
    "clear_cache",
    "get_backend",
    "load_backend",
    "weights_sha256",
]
