"""Rendition version 1's per-pixel float64 pipeline (imaging/dicom/rendition.py before the lookup tables), kept
verbatim as the reference the table implementation is tested against (test_rendition_lut.py)."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or hasattr(value, "__getitem__") and not isinstance(value, str):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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


def float_rendition(ds: Dataset, *, pixels: np.ndarray | None = None,
                    max_size: int = 2048) -> tuple[np.ndarray, np.ndarray, dict]:
    """(display8, full16, window metadata) exactly as rendition version 1 computed them."""
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

    return display8, full16, {"window_center": float(center), "window_width": float(width_w),
                              "window_source": source, "voi_lut_function": voi_function, "min": vmin, "max": vmax,
                              "slope": slope}
