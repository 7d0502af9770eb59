"""Validation of one uploaded file as an importable chest radiograph instance.

:func:`validate` reads the bytes with pydicom, checks structure and header against what a reader trial can
display, checks the declared pixel size *before* decoding anything (a header claiming 65535 x 65535 pixels is
refused without allocating), then decodes the pixel data through pydicom's pixel handlers (compressed transfer
syntaxes through pylibjpeg). Every refusal is a :class:`DicomRefused` with a machine-readable ``reason_code``
(see :data:`REASON_CODES`). Nothing is written anywhere.

Checks run in this order, so a file with several faults gets the most fundamental one:
``not_dicom`` / ``too_large`` (file bytes) -> ``truncated`` (stream) -> ``missing_transfer_syntax`` ->
``invalid_vr`` -> ``no_pixel_data`` -> ``missing_image_attributes`` -> ``too_large`` (declared pixels) ->
``truncated`` (pixel data shorter than declared) -> ``modality_not_allowed`` -> ``multiframe`` ->
``not_grayscale`` -> ``unsupported_bits`` -> ``too_small`` -> ``body_part_not_allowed`` ->
``view_not_allowed`` -> ``unsupported_transfer_syntax`` -> ``undecodable``.

Thread-safety: reading records pydicom's warnings with :func:`warnings.catch_warnings`, which is process
global; run imports in worker processes (Celery prefork, gunicorn sync workers), not in threads.
"""
from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

#: reason_code -> what it means (for the UI and the API documentation).
REASON_CODES: dict[str, str] = {
    "not_dicom": "Not a DICOM file (no DICM marker and no plausible data set).",
    "truncated": "The file ends early: an element, the encapsulated pixel data or the pixel data is cut short.",
    "missing_transfer_syntax": "The file meta information has no Transfer Syntax UID (0002,0010).",
    "invalid_vr": "An attribute needed to interpret the image has a value invalid for its VR.",
    "no_pixel_data": "There is no Pixel Data (7FE0,0010): not an image, or the image is missing.",
    "missing_image_attributes": "Rows, Columns, Bits Allocated or Photometric Interpretation is missing or zero.",
    "too_large": "The file or the declared image is larger than the configured limit.",
    "modality_not_allowed": "The Modality is not one the trial accepts (CR, DX by default).",
    "multiframe": "More than one frame; a chest radiograph instance has one.",
    "not_grayscale": "Not a single-sample MONOCHROME1/MONOCHROME2 image.",
    "unsupported_bits": "Bits Allocated/Stored outside what the renderer supports (8 or 16 allocated).",
    "too_small": "The image is smaller than the configured minimum size.",
    "body_part_not_allowed": "Body Part Examined is not one the trial accepts.",
    "view_not_allowed": "View Position is not one the trial accepts.",
    "unsupported_transfer_syntax": "No installed decoder for the transfer syntax.",
    "undecodable": "The pixel data could not be decoded (corrupt stream or inconsistent header).",
}

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000  # ~6300 x 6300; the largest CR/DX detectors are ~4300 x 4300
DEFAULT_MIN_SIZE = 256  # shorter side, in pixels

# Attributes that must hold valid values for the pixels to be interpreted and displayed.
_IMAGE_CRITICAL = (
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "NumberOfFrames", "PlanarConfiguration", "RescaleIntercept",
    "RescaleSlope", "WindowCenter", "WindowWidth", "PixelSpacing", "ImagerPixelSpacing",
)
_NUMERIC_STRING_VRS = {"IS", "DS"}
_IS_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_DS_RE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


class DicomRefused(Exception):  # a refusal is an outcome, not a program error
    """A file refused at import, with a machine-readable reason."""

    def __init__(self, filename: str, reason_code: str, message: str):
        if reason_code not in REASON_CODES:
            raise ValueError(f"unknown reason code {reason_code!r}")
        super().__init__(f"{filename}: {reason_code}: {message}")
        self.filename = filename
        self.reason_code = reason_code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"filename": self.filename, "reason_code": self.reason_code, "message": self.message}


@dataclass
class ValidatedInstance:
    """A file that passed validation, with its parsed data set and decoded stored pixel values."""

    filename: str
    sha256: str  # of the bytes as received
    dataset: Dataset  # has file_meta with a Transfer Syntax UID (inferred when the file had no meta)
    pixels: np.ndarray  # stored values, shape (rows, columns)
    transfer_syntax_uid: str
    modality: str
    rows: int
    columns: int
    #: Soft findings a coordinator may want to see; machine-readable codes, e.g. "no_file_meta",
    #: "body_part:EXTREMITY", "view:LL", "non_human", "burned_in_annotation", "lossy_compressed",
    #: "invalid_value:PatientWeight".
    flags: list[str] = field(default_factory=list)


def _refuse(filename: str, code: str, message: str) -> DicomRefused:
    return DicomRefused(filename, code, message)


def _iter_elements(ds: Dataset) -> Iterable:
    """Yield every element, recursing into sequences, without converting raw values where avoidable."""
    for elem in ds.elements():
        yield elem
        if not isinstance(elem, RawDataElement) and elem.VR == "SQ":
            for item in elem.value or []:
                yield from _iter_elements(item)


def _find_short_element(ds: Dataset) -> str | None:
    for elem in _iter_elements(ds):
        if isinstance(elem, RawDataElement) and elem.value is not None and elem.length != 0xFFFFFFFF:
            if len(elem.value) < elem.length:
                return f"element {elem.tag} declares {elem.length} bytes, file holds {len(elem.value)}"
    return None


def _read(data: bytes, filename: str) -> tuple[Dataset, bool, list[str]]:
    """Parse; return (dataset, had_file_meta, pydicom warning messages)."""
    has_marker = len(data) >= 132 and data[128:132] == b"DICM"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=not has_marker)
            # Convert every element now (inside the warning capture), so that problems show here.
            for _elem in _iter_elements(ds):
                pass
        except InvalidDicomError as exc:
            raise _refuse(filename, "not_dicom", str(exc)) from exc
        except (EOFError, struct.error) as exc:
            raise _refuse(filename, "truncated", f"file ends inside the data set ({exc})") from exc
        except (ValueError, TypeError, KeyError, OverflowError, NotImplementedError) as exc:
            code = "not_dicom" if not has_marker else "invalid_vr"
            raise _refuse(filename, code, f"could not parse the data set: {exc}") from exc
    messages = [str(w.message) for w in caught]
    had_meta = has_marker and len(getattr(ds, "file_meta", None) or []) > 0
    return ds, had_meta, messages


def _plausible(ds: Dataset) -> bool:
    keys = {"SOPClassUID", "Modality", "PixelData", "Rows", "StudyInstanceUID", "SOPInstanceUID"}
    return any(k in ds for k in keys)


def _infer_transfer_syntax(ds: Dataset) -> UID:
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _value_ok(elem) -> bool:
    values = elem.value if elem.VM > 1 else [elem.value]
    for value in values:
        if value is None or value == "":
            continue
        if isinstance(value, str):  # pydicom keeps the string when it could not convert it
            pattern = _IS_RE if elem.VR == "IS" else _DS_RE
            if not pattern.match(value):
                return False
    return True


def _check_values(ds: Dataset, filename: str, flags: list[str]) -> None:
    for keyword in _IMAGE_CRITICAL:
        if keyword not in ds:
            continue
        elem = ds[keyword]
        if elem.VR in _NUMERIC_STRING_VRS and not _value_ok(elem):
            raise _refuse(filename, "invalid_vr", f"{keyword} has invalid {elem.VR} value {elem.value!r}")
    for elem in ds:
        if elem.VR in _NUMERIC_STRING_VRS and elem.keyword not in _IMAGE_CRITICAL and not _value_ok(elem):
            flags.append(f"invalid_value:{elem.keyword or elem.tag}")


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    value = ds.get(keyword, default)
    if value is None or value == "":
        return default
    return int(value)


def expected_pixel_bytes(rows: int, columns: int, samples: int, bits_allocated: int, frames: int) -> int:
    if bits_allocated == 1:
        return (rows * columns * samples * frames + 7) // 8
    return rows * columns * samples * frames * (bits_allocated // 8)


def validate(
    data: bytes,
    filename: str,
    *,
    allowed_modalities: tuple[str, ...] = ("CR", "DX"),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_body_parts: tuple[str, ...] | None = None,
    allowed_views: tuple[str, ...] | None = None,
) -> ValidatedInstance:
    """Validate one file; return the parsed instance with decoded pixels, or raise :class:`DicomRefused`.

    ``allowed_body_parts`` / ``allowed_views``: None accepts anything (a mismatch is then only a flag);
    e.g. ``("CHEST", "THORAX", "")`` and ``("PA", "AP", "")`` make them refusals. ``min_size`` applies to
    the shorter side.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom re-warns on value access; _read already recorded them
        return _validate(
            data, filename, allowed_modalities=allowed_modalities, max_pixels=max_pixels, min_size=min_size,
            max_bytes=max_bytes, allowed_body_parts=allowed_body_parts, allowed_views=allowed_views,
        )


def _validate(
    data: bytes,
    filename: str,
    *,
    allowed_modalities: tuple[str, ...],
    max_pixels: int,
    min_size: int,
    max_bytes: int,
    allowed_body_parts: tuple[str, ...] | None,
    allowed_views: tuple[str, ...] | None,
) -> ValidatedInstance:
    if not data:
        raise _refuse(filename, "not_dicom", "empty file")
    if len(data) > max_bytes:
        raise _refuse(filename, "too_large", f"file is {len(data)} bytes, limit {max_bytes}")
    flags: list[str] = []

    ds, had_meta, messages = _read(data, filename)
    eof = [m for m in messages if "End of file" in m or "delimiter" in m.lower()]
    if eof:
        raise _refuse(filename, "truncated", eof[0])
    if not had_meta and not _plausible(ds):
        # A force-read of non-DICOM bytes yields junk elements: judge plausibility before their lengths.
        raise _refuse(filename, "not_dicom", "no DICM marker and no recognisable image attributes")
    short = _find_short_element(ds)
    if short:
        raise _refuse(filename, "truncated", short)
    if not _plausible(ds):
        raise _refuse(filename, "not_dicom", "no recognisable image attributes in the data set")

    if had_meta:
        ts = ds.file_meta.get("TransferSyntaxUID")
        if not ts:
            raise _refuse(filename, "missing_transfer_syntax", "file meta has no (0002,0010) Transfer Syntax UID")
    else:
        ts = _infer_transfer_syntax(ds)
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ts
        if "SOPClassUID" in ds:
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta = meta
        flags.append("no_file_meta")
    ts = UID(str(ts))

    _check_values(ds, filename, flags)

    if "PixelData" not in ds:
        raise _refuse(filename, "no_pixel_data", "no (7FE0,0010) Pixel Data element")
    try:
        rows = _int(ds, "Rows") or 0
        columns = _int(ds, "Columns") or 0
        bits_allocated = _int(ds, "BitsAllocated") or 0
        bits_stored = _int(ds, "BitsStored", bits_allocated) or 0
        samples = _int(ds, "SamplesPerPixel", 1) or 1
        frames = _int(ds, "NumberOfFrames", 1) or 1
    except (TypeError, ValueError) as exc:
        raise _refuse(filename, "invalid_vr", f"image attribute not a number: {exc}") from exc
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if not rows or not columns or not bits_allocated or not photometric:
        raise _refuse(filename, "missing_image_attributes",
                      f"Rows={rows} Columns={columns} BitsAllocated={bits_allocated} Photometric={photometric!r}")

    declared = rows * columns * samples * frames
    if declared > max_pixels:
        raise _refuse(filename, "too_large",
                      f"declared {rows} x {columns} x {samples} x {frames} = {declared} pixels, limit {max_pixels}")
    if not ts.is_encapsulated:
        expected = expected_pixel_bytes(rows, columns, samples, bits_allocated, frames)
        actual = len(ds.PixelData)
        if actual < expected:
            raise _refuse(filename, "truncated", f"pixel data has {actual} bytes, header implies {expected}")

    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality not in {m.upper() for m in allowed_modalities}:
        raise _refuse(filename, "modality_not_allowed",
                      f"Modality {modality or '(none)'} not in {', '.join(allowed_modalities)}")
    if frames > 1:
        raise _refuse(filename, "multiframe", f"{frames} frames")
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise _refuse(filename, "not_grayscale", f"SamplesPerPixel={samples}, {photometric}")
    if bits_allocated not in (8, 16) or not 1 <= bits_stored <= bits_allocated:
        raise _refuse(filename, "unsupported_bits", f"BitsAllocated={bits_allocated} BitsStored={bits_stored}")
    if min(rows, columns) < min_size:
        raise _refuse(filename, "too_small", f"{rows} x {columns}, shorter side below {min_size}")

    body_part = str(ds.get("BodyPartExamined", "") or "").strip().upper()
    view = str(ds.get("ViewPosition", "") or "").strip().upper()
    if allowed_body_parts is not None and body_part not in {b.upper() for b in allowed_body_parts}:
        raise _refuse(filename, "body_part_not_allowed", f"BodyPartExamined {body_part or '(none)'}")
    if allowed_views is not None and view not in {v.upper() for v in allowed_views}:
        raise _refuse(filename, "view_not_allowed", f"ViewPosition {view or '(none)'}")
    if body_part not in ("", "CHEST", "THORAX"):
        flags.append(f"body_part:{body_part}")
    if view not in ("", "PA", "AP"):
        flags.append(f"view:{view}")
    if "PatientSpeciesDescription" in ds or "PatientSpeciesCodeSequence" in ds:
        flags.append("non_human")
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        flags.append("burned_in_annotation")
    if str(ds.get("LossyImageCompression", "")).strip() == "01" or ts in _LOSSY:
        flags.append("lossy_compressed")

    if ts.is_encapsulated or not ts.is_transfer_syntax:
        from pydicom.pixels.decoders.base import get_decoder

        try:
            available = get_decoder(ts).is_available
        except (NotImplementedError, ValueError, KeyError):
            available = False
        if not available:
            raise _refuse(filename, "unsupported_transfer_syntax", f"no decoder installed for {ts} ({ts.name})")

    try:
        pixels = ds.pixel_array
    except Exception as exc:  # any decoder failure is a refusal, never a crash
        raise _refuse(filename, "undecodable", f"{type(exc).__name__}: {exc}") from exc
    if pixels.shape != (rows, columns):
        raise _refuse(filename, "undecodable", f"decoded shape {pixels.shape}, header says {(rows, columns)}")

    return ValidatedInstance(
        filename=filename,
        sha256=hashlib.sha256(data).hexdigest(),
        dataset=ds,
        pixels=pixels,
        transfer_syntax_uid=str(ts),
        modality=modality,
        rows=rows,
        columns=columns,
        flags=flags,
    )


_LOSSY = {
    UID("1.2.840.10008.1.2.4.50"), UID("1.2.840.10008.1.2.4.51"), UID("1.2.840.10008.1.2.4.81"),
    UID("1.2.840.10008.1.2.4.91"), UID("1.2.840.10008.1.2.4.93"), UID("1.2.840.10008.1.2.4.203"),
}
