"""The retrieval baseline's image embedding: deterministic, weight-free, numpy + Pillow only.

Recipe (976 float32 dimensions, L2-normalised, so cosine similarity is a dot product):

1. Any PIL mode -> 8-bit grey (16-bit/float images min-max scaled), resized to 64 x 64 (bilinear, aspect
   ratio ignored: chest radiographs are near-square and the distortion is the same for every image).
2. Histogram equalisation: removes the exposure, window/level and bit-depth differences between devices and
   sites, which otherwise dominate raw-pixel distances.
3. "Tiny image" part (Torralba et al., PAMI 2008): the equalised image block-averaged to 16 x 16, mean-removed
   and L2-normalised (256 dims): global layout (heart size and position, diaphragm height, lung fields).
4. HOG-like part (Dalal & Triggs, CVPR 2005) at two scales: central-difference gradients, unsigned orientation
   in 9 bins weighted by magnitude, pooled in 8 x 8 cells on the 64 x 64 image (576 dims) and in 8 x 8 cells on
   a 32 x 32 version (144 dims); each scale square-rooted (Hellinger) and L2-normalised: edges and texture
   (costophrenic angles, pleural lines, opacities) with some robustness to small shifts.
5. The three parts weighted equally and the whole L2-normalised.

Why this: it is deterministic (no randomness, no floating-point reductions whose order depends on hardware:
the same Pillow and numpy give the same bytes), needs no weights or downloads, takes about a millisecond per
image on a CPU, and tiny images + HOG with nearest neighbours are classic, well-understood image-retrieval
baselines -- which is exactly what the ``retrieval`` backend claims to be, and no more.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from .base import to_rgb

EMBEDDING_VERSION = "tinyhog-v1"
SIZE = 64
TINY = 16
ORIENTATIONS = 9
CELL = 8
EMBEDDING_DIM = TINY * TINY + (SIZE // CELL) ** 2 * ORIENTATIONS + (SIZE // 2 // CELL) ** 2 * ORIENTATIONS


def _grey(image: Image.Image) -> np.ndarray:
    grey = to_rgb(image).convert("L") if image.mode != "L" else image
    grey = grey.resize((SIZE, SIZE), resample=Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.uint8)


def _equalise(pixels: np.ndarray) -> np.ndarray:
    hist = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(hist)
    nonzero = cdf[cdf > 0]
    lo = nonzero[0] if nonzero.size else 0.0
    span = cdf[-1] - lo
    if span <= 0:  # a flat image
        return np.zeros(pixels.shape, dtype=np.float64)
    lut = (cdf - lo) / span
    return lut[pixels]


def _block_mean(arr: np.ndarray, block: int) -> np.ndarray:
    h, w = arr.shape
    return arr.reshape(h // block, block, w // block, block).mean(axis=(1, 3))


def _l2(vec: np.ndarray) -> np.ndarray:
    norm = float(np.sqrt(np.sum(vec * vec)))
    return vec / norm if norm > 1e-12 else vec


def _hog(arr: np.ndarray) -> np.ndarray:
    gx = np.zeros_like(arr)
    gy = np.zeros_like(arr)
    gx[:, 1:-1] = arr[:, 2:] - arr[:, :-2]
    gy[1:-1, :] = arr[2:, :] - arr[:-2, :]
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
    bins = np.minimum((angle / np.pi * ORIENTATIONS).astype(np.int64), ORIENTATIONS - 1)
    cells = arr.shape[0] // CELL
    cell_index = np.arange(arr.shape[0]) // CELL
    flat = (cell_index[:, None] * cells + cell_index[None, :]) * ORIENTATIONS + bins
    hist = np.bincount(flat.ravel(), weights=magnitude.ravel(), minlength=cells * cells * ORIENTATIONS)
    return _l2(np.sqrt(hist))


def embed_image(image: Image.Image) -> np.ndarray:
    """The embedding of one image (float32, shape ``(EMBEDDING_DIM,)``, unit L2 norm unless the image is flat)."""
    eq = _equalise(_grey(image))
    tiny = _block_mean(eq, SIZE // TINY).ravel()
    tiny = _l2(tiny - tiny.mean())
    hog_full = _hog(eq)
    hog_half = _hog(_block_mean(eq, 2))
    vec = np.concatenate([tiny, hog_full, hog_half]) / np.sqrt(3.0)
    return _l2(vec).astype(np.float32)


def embed_images(images: list[Image.Image]) -> np.ndarray:
    """Embeddings of several images, shape ``(n, EMBEDDING_DIM)``; the mean of a case's views is one option."""
    if not images:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([embed_image(im) for im in images])


def embedding_digest(embedding: np.ndarray) -> bytes:
    """A stable hash of an embedding (quantised to 1e-4 first, so float noise in the last bits cannot change it)."""
    quantised = np.round(np.asarray(embedding, dtype=np.float64) * 1e4).astype("<i4")
    return hashlib.sha256(quantised.tobytes()).digest()
