"""Display renditions of a validated radiograph.

What is produced and why
------------------------
Each instance gets two lossless PNG files of the same size, plus a small JSON-able ``display`` dict:

* ``display_png``: 8-bit grayscale, what the file says the image should look like: modality LUT/rescale,
  then the file's VOI LUT or its first window (VOI LUT Function honoured), or an automatic 0.5-99.5 %
  percentile window when the file has neither; MONOCHROME1 inverted so bone is bright. Every browser shows it
  in an ``<img>`` with no script, it is the image readers see first and what thumbnails use.
* ``full_range_png``: 16-bit grayscale of the full dynamic range *after* the modality LUT and *before* VOI,
  not inverted. ``value = png * full_range.slope + full_range.intercept`` gives modality units back
  (slope is 1 whenever the range fits in 16 bits, i.e. for every CR/DX file). The viewer windows/levels on
  this with the ``display`` metadata (min, max, default centre/width, invert) so readers can adjust
  contrast beyond the 8-bit rendition, as on a workstation.

Why lossless PNG: diagnostic reading must not add compression artefacts (lossy JPEG blurs fine lines such as
pneumothorax edges); PNG is lossless, patent-free, supported by every browser and by Pillow, supports 16-bit
grayscale natively, and decodes fast (zlib inflate: a 2048 x 2048 16-bit PNG decodes in tens of ms), so no
server-side tiling or DICOMweb stack is needed. No metadata chunks are written (nothing identifying can leak).
Note for the viewer: browsers reduce 16-bit PNGs to 8 bits when decoding for ``<img>``/canvas, so the
full-range PNG must be decoded in script (e.g. a small PNG decoder such as fast-png/UPNG.js) to get the
16-bit values; the 8-bit PNG needs nothing.

Why downscale to a long side of at most 2048 (``max_size``): CR/DX detectors are 2000-4300 px; a browser
viewer on a typical 1920 x 1080 / 2560 x 1440 reading screen shows a PA chest at about 1000-1400 px high, so
2048 keeps more than screen resolution at 1.5-2x zoom while bounding the full-range PNG to ~8 MB raw, the
download to a few MB and decode time to tens of ms. Downscaling is done on the modality values (float,
Lanczos, clipped to the original range), before windowing, as a workstation does. The original DICOM stays
stored (de-identified) for full-resolution needs.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing

DEFAULT_MAX_SIZE = 2048
RENDITION_VERSION = 1


@dataclass
class Rendition:
    display_png: bytes  # 8-bit grayscale PNG, VOI applied, MONOCHROME1 inverted
    full_range_png: bytes  # 16-bit grayscale PNG of the modality values (see display["full_range"])
    width: int
    height: int
    display: dict[str, Any] = field(default_factory=dict)  # JSON-able, for Image.display


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or hasattr(value, "__getitem__") and not isinstance(value, str):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _png(array: np.ndarray, compress_level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


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


def make_rendition(
    ds: Dataset,
    *,
    pixels: np.ndarray | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    compress_level: int = 3,
) -> Rendition:
    """Make the 8-bit display PNG and the 16-bit full-range PNG of a single-frame grayscale image.

    ``pixels``: the stored values if already decoded (``ValidatedInstance.pixels``); else ``ds.pixel_array``.
    """
    stored = ds.pixel_array if pixels is None else pixels
    if stored.ndim != 2:
        raise ValueError(f"expected one grayscale frame, got shape {stored.shape}")
    rows, columns = stored.shape
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    invert = photometric == "MONOCHROME1"

    scale = min(1.0, max_size / max(rows, columns))
    width, height = max(1, round(columns * scale)), max(1, round(rows * scale))
    if (width, height) != (columns, rows):
        # Large images: modality values in float32 (exact for integers below 2**24), downscaled, then float64
        # on the small array only, so peak memory stays a few times the stored pixels (issue 14, part 4).
        full = _modality_float32(stored, ds)
        vmin, vmax = float(full.min()), float(full.max())
        modality = _resize(full, width, height)
        del full
    else:
        modality = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
        vmin, vmax = float(modality.min()), float(modality.max())

    # --- full range: 16-bit, value = png * slope + intercept
    integral = bool(np.all(np.mod(np.asarray(apply_modality_lut(stored[:64, :64], ds)), 1) == 0))
    span = vmax - vmin
    slope = 1.0 if integral and span <= 65535 else (span / 65535 if span > 0 else 1.0)
    full16 = np.clip(np.rint((modality - vmin) / slope), 0, 65535).astype(np.uint16)

    # --- VOI for the 8-bit display
    voi_function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    lut_item = _voi_lut_item(ds)
    center, width_w = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if lut_item is not None:
        source = "voi_lut"
        out = np.asarray(apply_voi_lut(np.rint(modality).astype(np.int64), ds, index=0, prefer_lut=True),
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
            lo, hi = np.percentile(modality, [0.5, 99.5])
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
        unit = np.asarray(apply_windowing(modality.copy(), voi, index=0), dtype=np.float64) / 65535.0
    unit = np.clip(unit, 0.0, 1.0)
    if invert:
        unit = 1.0 - unit
    display8 = np.rint(unit * 255).astype(np.uint8)

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
        "window_center": float(center),
        "window_width": float(width_w),
        "window_source": source,  # file | voi_lut | auto
        "voi_lut_function": voi_function,
        "full_range": {"encoding": "png-gray16", "slope": slope, "intercept": vmin},
        "rescale_type": str(ds.get("RescaleType", "") or ""),
        "pixel_spacing_mm": [s / scale for s in spacing] if spacing else None,
    }
    return Rendition(
        display_png=_png(display8, compress_level),
        full_range_png=_png(full16, compress_level),
        width=width,
        height=height,
        display=display,
    )


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
