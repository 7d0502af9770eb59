"""Display renditions of a validated radiograph.

What is produced and why
------------------------
Each instance gets one lossless 8-bit PNG, plus a small JSON-able ``display`` dict; the full dynamic range is
computed from the stored DICOM when a viewer asks for it (:func:`full_range`):

* ``display_png``: 8-bit grayscale, what the file says the image should look like: modality LUT/rescale,
  then the file's VOI LUT or its first window (VOI LUT Function honoured), or an automatic 0.5-99.5 %
  percentile window when the file has neither; MONOCHROME1 inverted so bone is bright. Every browser shows it
  in an ``<img>`` with no script, it is the image readers see first and what thumbnails use.
* the full range (:func:`full_range`): 16-bit values of the full dynamic range *after* the modality LUT and
  *before* VOI, not inverted. ``value = v * full_range.slope + full_range.intercept`` gives modality units back
  (slope is 1 whenever the range fits in 16 bits, i.e. for every CR/DX file). The viewer windows/levels on
  this with the ``display`` metadata (min, max, default centre/width, invert) so readers can adjust
  contrast beyond the 8-bit rendition, as on a workstation. Since rendition version 2 it is not stored at
  import: the image view derives it from the stored (de-identified) DICOM with this same function on the
  first request and caches the raw array (imaging/image_views.py); version 1 stored it as a 16-bit PNG.

How it is computed (version 2, docs/import.md "Speed"): stored pixel values are integers, so every per-pixel
step (modality LUT or rescale, the VOI window or LUT, inversion, rounding to 0..255) is one function of the
stored value: it is evaluated once per possible stored value (at most 65,536) and applied with one table
lookup. That is the same arithmetic, in float64, as the earlier per-pixel float pipeline, so the display
image is identical to it (tests/imaging/test_rendition_lut.py). Images larger than ``max_size`` are
downscaled on the modality values (float32, Lanczos), rounded to the 16-bit full range, and windowed by a
table over those 16-bit values: within one grey level of windowing the unrounded values (tested).

Why lossless PNG: diagnostic reading must not add compression artefacts (lossy JPEG blurs fine lines such as
pneumothorax edges); PNG is lossless, patent-free, supported by every browser and by Pillow, and decodes fast.
The encoder here filters every row with PNG's "Up" filter (numpy, one subtraction) and deflates with zlib's
Huffman-only strategy at level 1: about 25 ms for a 1955 x 1841 chest and smaller than Pillow's level 3
(measured against PNG levels 0-9 and WebP lossless in docs/import.md). No metadata chunks are written
(nothing identifying can leak).

Why downscale to a long side of at most 2048 (``max_size``): CR/DX detectors are 2000-4300 px; a browser
viewer on a typical 1920 x 1080 / 2560 x 1440 reading screen shows a PA chest at about 1000-1400 px high, so
2048 keeps more than screen resolution at 1.5-2x zoom while bounding the full range to ~8 MB raw, the
download to a few MB and decode time to tens of ms. Downscaling is done on the modality values (float,
Lanczos, clipped to the original range), before windowing, as a workstation does. The original DICOM stays
stored (de-identified) for full-resolution needs.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing

DEFAULT_MAX_SIZE = 2048
RENDITION_VERSION = 2
FULL_RANGE_ENCODING = "dicom"  # version 2: derived from the stored DICOM on request (version 1: "png-gray16")
AUTO_PERCENTILES = (0.5, 99.5)


@dataclass
class Rendition:
    display_png: bytes  # 8-bit grayscale PNG, VOI applied, MONOCHROME1 inverted
    width: int
    height: int
    display: dict[str, Any] = field(default_factory=dict)  # JSON-able, for Image.display
    display8: np.ndarray | None = field(default=None, repr=False)  # the pixels of display_png
    # The full range (:func:`full_range`'s values, uint16) when asked for with ``with_full_range``: the import
    # writes the viewer's cache from it, so the stored DICOM is not decoded a second time (docs/import.md "Speed").
    full16: np.ndarray | None = field(default=None, repr=False)


@dataclass
class FullRange:
    """The full dynamic range at the rendition's size: ``modality = values * slope + intercept``."""

    values: np.ndarray  # uint16, (height, width), not inverted
    slope: float
    intercept: float  # the smallest modality value
    vmax: float
    scale: float


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or hasattr(value, "__getitem__") and not isinstance(value, str):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode_png(array: np.ndarray) -> bytes:
    """A grayscale PNG (8-bit from uint8, 16-bit from uint16): "Up" filter on every row, deflated with zlib's
    Huffman-only strategy at level 1 (why: docs/import.md "Speed"). No ancillary chunks."""
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected a 2-D uint8 or uint16 array, got {array.dtype} {array.shape}")
    height, width = array.shape
    depth = 8 * array.dtype.itemsize
    rows = np.ascontiguousarray(array, dtype=">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # filter type Up: each byte minus the byte above it, modulo 256 (PNG spec 9.2)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    deflate = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    idat = deflate.compress(filtered.data) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    img = Image.fromarray(values.astype(np.float32, copy=False), mode="F")
    out = np.asarray(img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.float64)
    return np.clip(out, values.min(), values.max())


def _modality_float32(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    """Rescale slope/intercept in float32 (pydicom's apply_modality_lut makes a float64 copy); a Modality LUT
    Sequence goes through pydicom."""
    if "ModalityLUTSequence" in ds:
        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    slope, intercept = _first(ds.get("RescaleSlope")), _first(ds.get("RescaleIntercept"))
    out = stored.astype(np.float32)
    if slope is not None and slope != 1.0:
        out *= np.float32(slope)
    if intercept:
        out += np.float32(intercept)
    return out


def _voi_lut_item(ds: Dataset) -> Dataset | None:
    seq = ds.get("VOILUTSequence")
    if seq and len(seq) and "LUTData" in seq[0] and "LUTDescriptor" in seq[0]:
        return seq[0]
    return None


def _size(rows: int, columns: int, max_size: int) -> tuple[int, int, float]:
    scale = min(1.0, max_size / max(rows, columns))
    return max(1, round(columns * scale)), max(1, round(rows * scale)), scale


def _full_range_slope(stored: np.ndarray, ds: Dataset, vmin: float, vmax: float) -> float:
    integral = bool(np.all(np.mod(np.asarray(apply_modality_lut(stored[:64, :64], ds)), 1) == 0))
    span = vmax - vmin
    return 1.0 if integral and span <= 65535 else (span / 65535 if span > 0 else 1.0)


def _to_full16(modality: np.ndarray, vmin: float, slope: float) -> np.ndarray:
    return np.clip(np.rint((modality - vmin) / slope), 0, 65535).astype(np.uint16)


@dataclass
class _Table:
    """Every stored value that can occur, as table indices: ``index`` (the image) holds stored - offset, and
    ``modality[i]`` is the modality value of stored value ``i + offset`` (pydicom's own function, float64)."""

    index: np.ndarray
    modality: np.ndarray
    counts: Callable[[], np.ndarray]


def _stored_table(stored: np.ndarray, ds: Dataset) -> _Table | None:
    if stored.dtype.kind not in "iu":
        return None
    lo, hi = int(stored.min()), int(stored.max())
    if hi - lo > 65535:
        return None  # more than 16 bits of stored values: the per-pixel path
    if stored.dtype.kind == "u" and stored.dtype.itemsize <= 2:
        index, offset = stored, 0  # no copy: the table starts at stored value 0
    else:
        index, offset = (stored.astype(np.int64) - lo).astype(np.uint16), lo
    domain = (np.arange(int(index.max()) + 1, dtype=np.int64) + offset).astype(stored.dtype)
    modality = np.asarray(apply_modality_lut(domain, ds), dtype=np.float64)
    cache: list[np.ndarray] = []

    def counts() -> np.ndarray:
        if not cache:
            cache.append(np.bincount(index.ravel(), minlength=len(modality)))
        return cache[0]

    return _Table(index=index, modality=modality, counts=counts)


def _table_range(table: _Table, stored: np.ndarray, ds: Dataset) -> tuple[float, float]:
    """The smallest and largest modality value in the image."""
    if "ModalityLUTSequence" in ds:  # a LUT need not be monotonic: look at the values that occur
        present = table.modality[table.counts() > 0]
    else:  # rescale is linear: the extremes come from the extreme stored values
        present = table.modality[[int(table.index.min()), int(table.index.max())]]
    return float(present.min()), float(present.max())


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's own linear interpolation for quantiles (numpy/lib/_function_base_impl.py, ``_lerp``)."""
    diff = b - a
    out = a + diff * t
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return out


def percentiles_from_counts(values: np.ndarray, counts: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """``np.percentile(pixels, q)`` (method "linear") of an image in which ``values[i]`` occurs ``counts[i]``
    times, without sorting the pixels: the same order statistics and numpy's interpolation, so the same floats."""
    keep = counts > 0
    v, c = values[keep], counts[keep]
    order = np.argsort(v, kind="stable")
    v, cum = v[order], np.cumsum(c[order])
    n = int(cum[-1])
    virtual = (n - 1) * np.true_divide(np.asarray(q, dtype=np.float64), 100)
    prev = np.clip(np.floor(virtual), 0, n - 1).astype(np.intp)
    nxt = np.minimum(prev + 1, n - 1)
    gamma = virtual - prev
    a, b = v[np.searchsorted(cum, prev, side="right")], v[np.searchsorted(cum, nxt, side="right")]
    return _lerp(a, b, gamma)


def _window(ds: Dataset, values: np.ndarray, auto: Callable[[], tuple[float, float]],
            vmin: float, vmax: float) -> tuple[np.ndarray, dict[str, Any]]:
    """The VOI transform of ``values`` (modality units) to 0..1, and how it was chosen."""
    voi_function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    lut_item = _voi_lut_item(ds)
    center, width_w = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if lut_item is not None:
        source = "voi_lut"
        out = np.asarray(apply_voi_lut(np.rint(values).astype(np.int64), ds, index=0, prefer_lut=True),
                         dtype=np.float64)
        lut = np.asarray(lut_item.LUTData, dtype=np.float64).ravel()
        lo, hi = float(lut.min()), float(lut.max())
        unit = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
        n_entries, first_mapped = int(lut_item.LUTDescriptor[0]) or 65536, int(lut_item.LUTDescriptor[1])
        center, width_w = first_mapped + n_entries / 2, float(n_entries)
        voi_function = "LINEAR"
    else:
        if center is None or width_w is None or width_w <= 1 or voi_function not in (
                "LINEAR", "LINEAR_EXACT", "SIGMOID"):
            source, voi_function = "auto", "LINEAR"
            lo, hi = auto()
            if hi <= lo:
                lo, hi = vmin, vmax if vmax > vmin else vmin + 1
            center, width_w = (lo + hi) / 2, float(hi - lo)
        else:
            source = "file"
        # Window into 0..65535 with pydicom's implementation of PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT,
        # SIGMOID), through a minimal data set so the output range is fixed and known.
        voi = Dataset()
        voi.PhotometricInterpretation = "MONOCHROME2"
        voi.PixelRepresentation = 0
        voi.BitsStored = 16
        voi.WindowCenter = center
        voi.WindowWidth = width_w
        voi.VOILUTFunction = voi_function
        unit = np.asarray(apply_windowing(values.copy(), voi, index=0), dtype=np.float64) / 65535.0
    meta = {"window_center": float(center), "window_width": float(width_w), "window_source": source,
            "voi_lut_function": voi_function}
    return np.clip(unit, 0.0, 1.0), meta


def _grey_table(unit: np.ndarray, invert: bool) -> np.ndarray:
    if invert:
        unit = 1.0 - unit
    return np.rint(unit * 255).astype(np.uint8)


def full_range(ds: Dataset, *, pixels: np.ndarray | None = None, max_size: int = DEFAULT_MAX_SIZE) -> FullRange:
    """The full dynamic range as the viewer gets it (the same values for the same stored pixels and header)."""
    stored = ds.pixel_array if pixels is None else pixels
    if stored.ndim != 2:
        raise ValueError(f"expected one grayscale frame, got shape {stored.shape}")
    width, height, scale = _size(*stored.shape, max_size)
    table = _stored_table(stored, ds) if scale == 1.0 else None
    if table is not None:
        vmin, vmax = _table_range(table, stored, ds)
        slope = _full_range_slope(stored, ds, vmin, vmax)
        values = _to_full16(table.modality, vmin, slope).take(table.index)
    else:
        modality, vmin, vmax = _modality_at_size(stored, ds, width, height)
        slope = _full_range_slope(stored, ds, vmin, vmax)
        values = _to_full16(modality, vmin, slope)
    return FullRange(values=values, slope=slope, intercept=vmin, vmax=vmax, scale=scale)


def _modality_at_size(stored: np.ndarray, ds: Dataset, width: int, height: int) -> tuple[np.ndarray, float, float]:
    """Per-pixel modality values (float64) at the rendition's size, and the range of the full-size ones."""
    if (width, height) != (stored.shape[1], stored.shape[0]):
        # Large images: modality values in float32 (exact for integers below 2**24), downscaled, then float64
        # on the small array only, so peak memory stays a few times the stored pixels (issue 14, part 4).
        full = _modality_float32(stored, ds)
        vmin, vmax = float(full.min()), float(full.max())
        return _resize(full, width, height), vmin, vmax
    modality = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    return modality, float(modality.min()), float(modality.max())


def make_rendition(ds: Dataset, *, pixels: np.ndarray | None = None, max_size: int = DEFAULT_MAX_SIZE,
                   with_full_range: bool = False) -> Rendition:
    """Make the 8-bit display PNG and the viewer metadata of a single-frame grayscale image.

    ``pixels``: the stored values if already decoded (``ValidatedInstance.pixels``); else ``ds.pixel_array``.
    ``with_full_range``: also return the full range (``Rendition.full16``, the values :func:`full_range` gives for
    the same pixels and header), made from the same tables (a few ms) instead of a second decode.
    """
    stored = ds.pixel_array if pixels is None else pixels
    if stored.ndim != 2:
        raise ValueError(f"expected one grayscale frame, got shape {stored.shape}")
    rows, columns = stored.shape
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    invert = photometric == "MONOCHROME1"
    width, height, scale = _size(rows, columns, max_size)

    table = _stored_table(stored, ds) if scale == 1.0 else None
    if table is not None:
        # One table entry per stored value: exactly the per-pixel float pipeline, applied by lookup.
        vmin, vmax = _table_range(table, stored, ds)
        slope = _full_range_slope(stored, ds, vmin, vmax)
        unit, voi = _window(ds, table.modality, lambda: tuple(
            percentiles_from_counts(table.modality, table.counts(), AUTO_PERCENTILES)), vmin, vmax)
        display8 = _grey_table(unit, invert).take(table.index)
        full16 = _to_full16(table.modality, vmin, slope).take(table.index) if with_full_range else None
    else:
        # Downscaled (or more than 16 bits of stored values): per-pixel float modality values, rounded to the
        # 16-bit full range, windowed by a table over those 16-bit values.
        modality, vmin, vmax = _modality_at_size(stored, ds, width, height)
        slope = _full_range_slope(stored, ds, vmin, vmax)
        full16 = _to_full16(modality, vmin, slope)
        levels = np.arange(int(full16.max()) + 1, dtype=np.float64) * slope + vmin
        unit, voi = _window(ds, levels, lambda: tuple(np.percentile(modality, AUTO_PERCENTILES)), vmin, vmax)
        del modality
        display8 = _grey_table(unit, invert).take(full16)

    spacing = _spacing(ds)
    display = {
        "version": RENDITION_VERSION,
        "width": width,
        "height": height,
        "source_rows": rows,
        "source_columns": columns,
        "scale": scale,
        "photometric_interpretation": photometric,
        "invert": invert,
        "min": vmin,
        "max": vmax,
        **voi,  # window_center, window_width, window_source (file | voi_lut | auto), voi_lut_function
        "full_range": {"encoding": FULL_RANGE_ENCODING, "slope": slope, "intercept": vmin},
        "rescale_type": str(ds.get("RescaleType", "") or ""),
        "pixel_spacing_mm": [s / scale for s in spacing] if spacing else None,
    }
    return Rendition(display_png=encode_png(display8), width=width, height=height, display=display,
                     display8=display8, full16=full16 if with_full_range else None)


def _spacing(ds: Dataset) -> list[float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            pair = [float(v) for v in value] if value is not None else []
        except (TypeError, ValueError):
            continue
        if len(pair) == 2 and all(v > 0 for v in pair):
            return pair
    return None
