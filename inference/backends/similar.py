"""Similar cases (issue 21 item 2): image encoders and nearest neighbours. Pure: no Django; torch only inside the
DenseNet encoder.

An encoder maps images to L2-normalised vectors (cosine similarity is then a dot product). Two are registered
(:data:`ENCODERS`, the trial setting ``similar_cases_encoder``):

- ``image`` (the default, weight-free): the retrieval baseline's and the out-of-distribution check's ``tinyhog``
  embedding (:mod:`inference.backends.embedding`: a histogram-equalised 16x16 tiny image plus HOG at two scales),
  so "similar" means what the OOD check's reference distance means;
- ``xrv_densenet``: the penultimate features of a torchxrayvision-format DenseNet-121 from local weights (read
  without the package and without running pickled code: :mod:`inference.backends.xrv_densenet`): ReLU of the
  last dense block's batch norm, global average pooled (1024 dimensions for DenseNet-121), as the classifier
  sees them; the image prepared as the weights expect (:func:`~inference.backends.xrv_densenet.xrv_input`).

:func:`nearest` ranks a library by cosine similarity to a query: the ``k`` best, ties by library order.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from .embedding import EMBEDDING_VERSION, embed_image
from .xrv_densenet import build_xrv_densenet, densenet_shape, read_xrv_state_dict, xrv_input


class Encoder(Protocol):
    name: str
    version: str

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 1e-12)


class ImageEncoder:
    """The weight-free default: the tinyhog embedding of each image."""

    name = "image"
    version = EMBEDDING_VERSION

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return _unit_rows(np.stack([embed_image(im) for im in images])) if images else np.zeros((0, 1))


class XrvDenseNetEncoder:
    """Pooled DenseNet features from local torchxrayvision-format weights (any DenseNet size: tests use a tiny
    one). ``version`` names the weights by their file name and size, so neighbours from other weights differ."""

    name = "xrv_densenet"

    def __init__(self, weights: str | Path, device: str = "cpu") -> None:
        path = Path(weights)
        state = read_xrv_state_dict(path)
        state.pop("op_threshs", None)
        model = build_xrv_densenet(**densenet_shape(state))
        model.load_state_dict(state)
        self.model = model.to(device).eval()
        self.device = device
        self.version = f"{path.name}:{path.stat().st_size}"

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        # torch is heavy and optional (the demo installs none): imported where the features are computed.
        import torch

        if not images:
            return np.zeros((0, 1))
        batch = torch.from_numpy(np.stack([xrv_input(im) for im in images])[:, None]).to(self.device)
        with torch.inference_mode():
            feats = torch.relu(self.model.features(batch))
            pooled = torch.nn.functional.adaptive_avg_pool2d(feats, 1).flatten(1).double().cpu().numpy()
        return _unit_rows(pooled)


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "image": lambda weights="": ImageEncoder(),
    "xrv_densenet": lambda weights="": XrvDenseNetEncoder(weights),
}


def load_encoder(name: str, weights: str = "") -> Encoder:
    """The encoder a trial names (:data:`ENCODERS`); ``weights``: the local file the DenseNet encoder reads."""
    if name not in ENCODERS:
        raise ValueError(f"unknown similar-cases encoder {name!r}; known: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](weights)


def nearest(query: np.ndarray, library: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` library rows most similar to ``query`` (cosine similarity, rows unit-normalised here): (index,
    similarity) best first, ties by index."""
    if k <= 0 or library.size == 0:
        return []
    q = _unit_rows(np.atleast_2d(query))[0]
    sims = _unit_rows(library) @ q
    order = sorted(range(len(sims)), key=lambda i: (-round(float(sims[i]), 12), i))[:k]
    return [(i, float(sims[i])) for i in order]
