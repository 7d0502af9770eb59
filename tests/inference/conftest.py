"""Fixtures of the inference tests: no database, no network (HF_HUB_OFFLINE), a tiny random Janus model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402


def synthetic_cxr(seed: int, size: tuple[int, int] = (256, 240), mode: str = "L") -> Image.Image:
    """A crude, deterministic chest-radiograph-like grey image: two lung fields, a heart, noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("L", size, color=int(rng.integers(170, 220)))
    draw = ImageDraw.Draw(img)
    for side in (0, 1):
        cx = w * (0.3 if side == 0 else 0.7) + rng.normal(0, w * 0.03)
        rx, ry = w * rng.uniform(0.12, 0.2), h * rng.uniform(0.25, 0.35)
        draw.ellipse([cx - rx, h * 0.5 - ry, cx + rx, h * 0.5 + ry], fill=int(rng.integers(30, 80)))
    hx, hw = w * rng.uniform(0.42, 0.55), w * rng.uniform(0.12, 0.3)
    draw.ellipse([hx - hw / 2, h * 0.55, hx + hw / 2, h * 0.85], fill=int(rng.integers(150, 210)))
    for _ in range(int(rng.integers(0, 4))):  # "opacities"
        x, y, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.3, 0.8) * h, rng.uniform(5, 25)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(120, 200)))
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(2)), dtype=np.float64)
    arr = np.clip(arr + rng.normal(0, 6, arr.shape), 0, 255)
    if mode == "I;16":
        return Image.fromarray((arr * 257).astype(np.uint16))
    return Image.fromarray(arr.astype(np.uint8)).convert(mode)


@pytest.fixture(scope="session")
def tiny_janus_path(tmp_path_factory):
    from inference.tiny import build_tiny_janus

    return build_tiny_janus(tmp_path_factory.mktemp("tiny-janus"))


@pytest.fixture(scope="session")
def cxr_images():
    return [synthetic_cxr(seed) for seed in range(12)]


@pytest.fixture(scope="session")
def make_cxr():
    return synthetic_cxr
