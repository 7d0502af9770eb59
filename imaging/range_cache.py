"""The viewer's full-range cache files: raw uint16 and its gzip-encoded delta byte planes (docs/viewer.md).

Under ``MEDIA_ROOT/cache/full-range/``: ``<public_id>.u16`` (raw little-endian uint16, row-major, at the display
rendition's size) and ``<public_id>.dp.gz`` (:func:`delta_planes` of it, gzip). Both are caches: deleting them
loses nothing, the image view makes them again from the stored DICOM (imaging/image_views.py). Since the sixth
session the import writes the raw file from the pixels it has just decoded (``write_raw``), so the stored DICOM is
never decoded a second time (for JPEG 2000 that was ~0.6 s of CPU at the first window/level), and a Celery task
(imaging/tasks.py) writes the encoded file after the import's commit, so the first window/level only reads files
(docs/import.md "Speed").

Why gzip with zlib's Huffman-only strategy (level 1) and not gzip level 6: on the delta planes of the real RG1 chest
CR it is ~8x faster (62 vs 530 ms of CPU) and smaller (4,481,556 vs 4,634,217 bytes): the low byte plane is noise
that no match finder shortens, and the high plane is mostly 0x00/0xFF, which Huffman coding alone packs better than
deflate's matches do (the measurement is in docs/import.md "Speed"). Every browser inflates it the same way.
"""
from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
from django.conf import settings

RAW_SUFFIX = ".u16"
PLANES_SUFFIX = ".dp.gz"


def cache_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "cache" / "full-range"


def raw_path(public_id: str) -> Path:
    return cache_dir() / f"{public_id}{RAW_SUFFIX}"


def planes_path(raw: Path) -> Path:
    return raw.with_suffix(PLANES_SUFFIX)


def _write_atomic(path: Path, data) -> None:
    """Temporary name, then rename: a reader sees the whole file or none (no fsync: a cache, made again if lost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_raw(public_id: str, values: np.ndarray) -> Path:
    """The full range (2-D uint16) as the raw cache file of image ``public_id``."""
    if values.ndim != 2 or values.dtype.kind != "u" or values.dtype.itemsize != 2:
        raise ValueError(f"expected a 2-D uint16 array, got {values.dtype} {values.shape}")
    path = raw_path(public_id)
    _write_atomic(path, np.ascontiguousarray(values, dtype="<u2").data)
    return path


def delta_planes(arr: np.ndarray) -> bytes:
    """The full range's transfer encoding: each pixel minus its left neighbour (modulo 65536; the first of a
    row minus 0), as two byte planes (every low byte, then every high byte). Lossless; the viewer undoes it
    (viewer.js decodeDeltaPlanes). Neighbouring pixels differ little, so the high plane is mostly 0x00/0xFF and
    compresses far better than the raw interleaved uint16."""
    a = np.ascontiguousarray(arr, dtype=np.uint16)
    d = a.copy()
    d[:, 1:] = a[:, 1:] - a[:, :-1]  # uint16 arithmetic wraps modulo 65536
    return (d & 0xFF).astype(np.uint8).tobytes() + (d >> 8).astype(np.uint8).tobytes()


def gzip_huffman(data: bytes) -> bytes:
    """A gzip member (RFC 1952, mtime 0) deflated with zlib's Huffman-only strategy at level 1 (why: above)."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, 16 + 15, 9, zlib.Z_HUFFMAN_ONLY)
    return deflate.compress(data) + deflate.flush()


def write_planes(raw: Path, width: int, height: int) -> Path:
    """The encoded cache file made from the raw one (``width * height`` uint16)."""
    arr = np.fromfile(raw, dtype="<u2").reshape(height, width)
    out = planes_path(raw)
    _write_atomic(out, gzip_huffman(delta_planes(arr)))
    return out


def fresh(path: Path, source: Path) -> bool:
    """The cache file exists and is not older than what it was made from."""
    return path.is_file() and path.stat().st_mtime >= source.stat().st_mtime
