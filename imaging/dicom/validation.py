"""Validation of one uploaded file as an importable chest radiograph instance.

:func:`validate` reads the bytes with pydicom, checks structure and header against what a reader trial can
display, checks the declared pixel size *before* decoding anything (a header claiming 65535 x 65535 pixels is
refused without allocating), then decodes the pixel data through pydicom's pixel handlers (compressed transfer
syntaxes through pylibjpeg). Every refusal is a :class:`DicomRefused` with a machine-readable ``reason_code``
(see :data:`REASON_CODES`). Nothing is written anywhere.

Checks run in this order, so a file with several faults gets the most fundamental one:
``not_dicom`` / ``too_large`` (file bytes, inflated size of a deflated data set) -> ``unreadable`` (pydicom
cannot parse it) / ``too_deep`` -> ``truncated`` (stream) -> ``not_an_image`` (DICOMDIR, SR, other non-image
SOP classes) -> ``missing_transfer_syntax`` -> ``invalid_vr`` -> ``no_pixel_data`` (absent or empty) ->
``missing_image_attributes`` -> ``too_large`` (declared pixels and bytes) -> ``truncated`` (pixel data shorter
than declared) -> ``modality_not_allowed`` -> ``multiframe`` -> ``not_grayscale`` -> ``unsupported_bits`` ->
``too_small`` -> ``for_processing`` -> ``body_part_not_allowed`` -> ``view_not_allowed`` ->
``unsupported_transfer_syntax`` -> ``too_large`` / ``undecodable`` (compressed stream headers, RLE segments)
-> ``undecodable`` (the decoder failed).

Resources are bounded before decoding (:mod:`imaging.dicom.bounds`): no check allocates more than the file
size, and the decoder runs only once the declared and the compressed-stream sizes agree and are under
``max_pixel_bytes``.

Thread-safety: reading records pydicom's warnings with :func:`warnings.catch_warnings`, which is process
global; run imports in worker processes (Celery prefork, gunicorn sync workers), not in threads.
"""
from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    UID_dictionary,
)

from imaging.dicom.bounds import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_ELEMENTS,
    BoundExceeded,
    check_nesting,
    codestream_size,
    count_elements,
    deflated_payload,
    first_fragment,
    inflated_size_within,
    rle_segments_within,
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
    "unreadable": "The file could not be parsed (a structure pydicom cannot read); the server log has details.",
    "too_deep": "Sequences are nested deeper than the configured limit.",
    "not_an_image": "A DICOM object that is not an image (DICOMDIR, structured report, presentation state...).",
    "for_processing": "A FOR PROCESSING image; the trial accepts FOR PRESENTATION images only.",
    "rendition_failed": "The display rendition could not be made from the decoded pixels.",
}

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_PIXELS = 24_000_000  # ~4900 x 4900; the largest CR/DX detectors are ~4300 x 4300 (18.5 M)
#: Rows x Columns x SamplesPerPixel x BitsAllocated/8 x Frames: what the decoder allocates. 4300 x 4300 x 2 is 37 MB.
DEFAULT_MAX_PIXEL_BYTES = 48 * 1024 * 1024
#: A deflated data set is inflated (counted, then parsed) only up to this size.
DEFAULT_MAX_INFLATED_BYTES = 96 * 1024 * 1024
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
MAMMO_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
INTRAORAL_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.3.1"
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


@dataclass(frozen=True)
class ChestChecks:
    """A trial's chest checks. No defaults here: trial/import_settings.py's ImportSettings is the one place they
    are set (imaging/services.py builds this from it)."""

    allowed_body_parts: tuple[str, ...]
    allow_empty_body_part: bool
    allowed_views: tuple[str, ...]
    allow_empty_view: bool
    presentation_only: bool
    pixel_spacing_mm: tuple[float, float]


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    min_size: int = DEFAULT_MIN_SIZE
    max_elements: int = DEFAULT_MAX_ELEMENTS


def _refuse(filename: str, code: str, message: str) -> DicomRefused:
    return DicomRefused(filename, code, message)


def _iter_elements(ds: Dataset, max_depth: int = DEFAULT_MAX_DEPTH) -> Iterator:
    """Every element, into sequences already converted, without converting raw values; iterative and
    depth-bounded (a recursive walk is what a few hundred nested sequences break)."""
    stack: list[tuple[Dataset, int]] = [(ds, 0)]
    while stack:
        current, depth = stack.pop()
        for elem in current.elements():
            yield elem
            if not isinstance(elem, RawDataElement) and elem.VR == "SQ":
                if depth + 1 > max_depth:
                    raise BoundExceeded("too_deep", f"sequences nested more than {max_depth} deep")
                stack.extend((item, depth + 1) for item in elem.value or [])


def _find_short_element(ds: Dataset, max_depth: int) -> str | None:
    for elem in _iter_elements(ds, max_depth):
        if isinstance(elem, RawDataElement) and elem.value is not None and elem.length != 0xFFFFFFFF:
            if len(elem.value) < elem.length:
                return f"element {elem.tag} declares {elem.length} bytes, file holds {len(elem.value)}"
    return None


def _check_inflated(data: bytes, filename: str, limit: int) -> None:
    try:
        offset = deflated_payload(data)
        if offset is not None:
            inflated_size_within(data, offset, limit)
    except BoundExceeded as exc:
        raise _refuse(filename, exc.kind, exc.message) from exc
    except zlib.error as exc:
        raise _refuse(filename, "unreadable", f"the deflated data set does not inflate: {exc}") from exc
    except Exception:  # noqa: BLE001 - a meta pydicom cannot read is judged by the full parse below
        return


def _read(data: bytes, filename: str, max_depth: int) -> tuple[Dataset, bool, list[str]]:
    """Parse; return (dataset, had_file_meta, pydicom warning messages). Any parser failure is a refusal."""
    has_marker = len(data) >= 132 and data[128:132] == b"DICM"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=not has_marker)
            for _elem in _iter_elements(ds, max_depth):
                pass
        except InvalidDicomError as exc:
            raise _refuse(filename, "not_dicom", str(exc)) from exc
        except (EOFError, struct.error) as exc:
            raise _refuse(filename, "truncated", f"file ends inside the data set ({exc})") from exc
        except BoundExceeded as exc:
            raise _refuse(filename, exc.kind, exc.message) from exc
        except RecursionError as exc:
            raise _refuse(filename, "too_deep", "sequences nested too deep to parse") from exc
        except (ValueError, TypeError, KeyError, OverflowError, NotImplementedError) as exc:
            code = "not_dicom" if not has_marker else "invalid_vr"
            raise _refuse(filename, code, f"could not parse the data set: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - e.g. OSError from big endian with undefined lengths
            raise _refuse(filename, "unreadable", f"could not parse the data set ({type(exc).__name__})") from exc
    messages = [str(w.message) for w in caught]
    had_meta = has_marker and len(getattr(ds, "file_meta", None) or []) > 0
    return ds, had_meta, messages


def _convert_all(ds: Dataset, filename: str, max_depth: int) -> None:
    """Convert every element now, bounded in depth, so that a bad VR or value refuses the file here."""
    try:
        check_nesting(ds, max_depth)
    except BoundExceeded as exc:
        raise _refuse(filename, exc.kind, exc.message) from exc
    except RecursionError as exc:
        raise _refuse(filename, "too_deep", "sequences nested too deep to parse") from exc
    except (ValueError, TypeError, KeyError, OverflowError, NotImplementedError) as exc:
        raise _refuse(filename, "invalid_vr", f"an element cannot be read: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001
        raise _refuse(filename, "unreadable", f"an element cannot be read ({type(exc).__name__})") from exc


def _plausible(ds: Dataset) -> bool:
    keys = {"SOPClassUID", "Modality", "PixelData", "Rows", "StudyInstanceUID", "SOPInstanceUID"}
    return any(k in ds for k in keys)


def _sop_class(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None) or Dataset()
    return str(ds.get("SOPClassUID", "") or meta.get("MediaStorageSOPClassUID", "") or "").strip()


def _not_an_image(ds: Dataset) -> str | None:
    """Why the object is not an image (DICOMDIR, SR, presentation state, waveform...), or None."""
    sop_class = _sop_class(ds)
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        return "a DICOMDIR (media directory), not an image"
    entry = UID_dictionary.get(sop_class)
    if entry and entry[1] == "SOP Class" and "Image" not in entry[0] and "PixelData" not in ds:
        return f"{entry[0]} is not an image"
    if "ContentSequence" in ds and "PixelData" not in ds:
        return "a structured document, not an image"
    return None


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
    return rows * columns * samples * frames * ((bits_allocated + 7) // 8)


def validate(
    data: bytes,
    filename: str,
    *,
    allowed_modalities: tuple[str, ...] = ("CR", "DX"),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    allowed_body_parts: tuple[str, ...] | None = None,
    allowed_views: tuple[str, ...] | None = None,
    checks: ChestChecks | None = None,
    sha256: str | None = None,
) -> ValidatedInstance:
    """Validate one file; return the parsed instance with decoded pixels, or raise :class:`DicomRefused`.

    Never raises anything else for bad input: a parser or decoder failure is a refusal too.
    ``checks``: the trial's chest checks (refusals and flags). Without it, ``allowed_body_parts`` /
    ``allowed_views`` of None accept anything (a mismatch is then only a flag); e.g. ``("CHEST", "")`` makes
    a mismatch a refusal. ``min_size`` applies to the shorter side. ``sha256``: the hex SHA-256 of ``data`` when
    the caller has it already (the import hashes each source once).
    """
    limits = Limits(max_bytes=max_bytes, max_pixels=max_pixels, max_pixel_bytes=max_pixel_bytes,
                    max_inflated_bytes=max_inflated_bytes, max_depth=max_depth, min_size=min_size,
                    max_elements=max_elements)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom re-warns on value access; _read already recorded them
        return _validate(data, filename, allowed_modalities=allowed_modalities, limits=limits,
                         allowed_body_parts=allowed_body_parts, allowed_views=allowed_views, checks=checks,
                         sha256=sha256)


def _parse(data: bytes, filename: str, limits: Limits, flags: list[str]) -> tuple[Dataset, UID]:
    """Bytes to a fully converted data set with a transfer syntax, or a refusal."""
    if not data:
        raise _refuse(filename, "not_dicom", "empty file")
    if len(data) > limits.max_bytes:
        raise _refuse(filename, "too_large", f"file is {len(data)} bytes, limit {limits.max_bytes}")
    _check_inflated(data, filename, limits.max_inflated_bytes)
    try:
        count_elements(data, limits.max_elements)
    except BoundExceeded as exc:
        raise _refuse(filename, exc.kind, exc.message) from exc
    ds, had_meta, messages = _read(data, filename, limits.max_depth)
    eof = [m for m in messages if "End of file" in m or "delimiter" in m.lower()]
    if eof:
        raise _refuse(filename, "truncated", eof[0])
    if not had_meta and not _plausible(ds) and _not_an_image(ds) is None:
        # A force-read of non-DICOM bytes yields junk elements: judge plausibility before their lengths.
        raise _refuse(filename, "not_dicom", "no DICM marker and no recognisable image attributes")
    try:
        short = _find_short_element(ds, limits.max_depth)
    except BoundExceeded as exc:
        raise _refuse(filename, exc.kind, exc.message) from exc
    if short:
        raise _refuse(filename, "truncated", short)
    why_not = _not_an_image(ds)
    if why_not:
        raise _refuse(filename, "not_an_image", why_not)
    if not _plausible(ds):
        raise _refuse(filename, "not_dicom", "no recognisable image attributes in the data set")
    _convert_all(ds, filename, limits.max_depth)

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
    return ds, UID(str(ts))


@dataclass(frozen=True)
class _Geometry:
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    samples: int
    frames: int
    photometric: str


def _geometry(ds: Dataset, filename: str, ts: UID, limits: Limits) -> _Geometry:
    """Declared image geometry, checked against the limits before any pixel is decoded."""
    if "PixelData" not in ds:
        raise _refuse(filename, "no_pixel_data", "no (7FE0,0010) Pixel Data element")
    if not ds.PixelData:
        raise _refuse(filename, "no_pixel_data", "the (7FE0,0010) Pixel Data element is empty")
    try:
        g = _Geometry(
            rows=_int(ds, "Rows") or 0, columns=_int(ds, "Columns") or 0,
            bits_allocated=_int(ds, "BitsAllocated") or 0,
            bits_stored=_int(ds, "BitsStored", _int(ds, "BitsAllocated")) or 0,
            samples=_int(ds, "SamplesPerPixel", 1) or 1, frames=_int(ds, "NumberOfFrames", 1) or 1,
            photometric=str(ds.get("PhotometricInterpretation", "") or "").strip().upper(),
        )
    except (TypeError, ValueError) as exc:
        raise _refuse(filename, "invalid_vr", f"image attribute not a number: {exc}") from exc
    if not g.rows or not g.columns or not g.bits_allocated or not g.photometric:
        raise _refuse(filename, "missing_image_attributes",
                      f"Rows={g.rows} Columns={g.columns} BitsAllocated={g.bits_allocated} "
                      f"Photometric={g.photometric!r}")
    if min(g.rows, g.columns, g.samples, g.frames, g.bits_allocated) < 0:
        raise _refuse(filename, "invalid_vr", "negative image dimensions")
    declared = g.rows * g.columns * g.samples * g.frames
    if declared > limits.max_pixels:
        raise _refuse(filename, "too_large", f"declared {g.rows} x {g.columns} x {g.samples} x {g.frames} = "
                                             f"{declared} pixels, limit {limits.max_pixels}")
    nbytes = expected_pixel_bytes(g.rows, g.columns, g.samples, g.bits_allocated, g.frames)
    if nbytes > limits.max_pixel_bytes:
        raise _refuse(filename, "too_large", f"declared pixels take {nbytes} bytes (Rows x Columns x Samples x "
                                             f"BitsAllocated x Frames), limit {limits.max_pixel_bytes}")
    if not ts.is_encapsulated and len(ds.PixelData) < nbytes:
        raise _refuse(filename, "truncated", f"pixel data has {len(ds.PixelData)} bytes, header implies {nbytes}")
    return g


def _check_image_kind(ds: Dataset, filename: str, g: _Geometry, allowed_modalities: tuple[str, ...],
                      min_size: int) -> str:
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality not in {m.upper() for m in allowed_modalities}:
        raise _refuse(filename, "modality_not_allowed",
                      f"Modality {modality or '(none)'} not in {', '.join(allowed_modalities)}")
    if g.frames > 1:
        raise _refuse(filename, "multiframe", f"{g.frames} frames")
    if g.samples != 1 or g.photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise _refuse(filename, "not_grayscale", f"SamplesPerPixel={g.samples}, {g.photometric}")
    if g.bits_allocated not in (8, 16) or not 1 <= g.bits_stored <= g.bits_allocated:
        raise _refuse(filename, "unsupported_bits", f"BitsAllocated={g.bits_allocated} BitsStored={g.bits_stored}")
    if min(g.rows, g.columns) < min_size:
        raise _refuse(filename, "too_small", f"{g.rows} x {g.columns}, shorter side below {min_size}")
    return modality


def _spacing(ds: Dataset) -> list[float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            pair = [float(v) for v in ds.get(keyword) or []]
        except (TypeError, ValueError):
            continue
        if len(pair) == 2 and all(v > 0 for v in pair):
            return pair
    return None


def _chest_checks(ds: Dataset, filename: str, checks: ChestChecks, flags: list[str]) -> None:
    """The trial's chest checks: refusals for what it does not accept, flags for what it accepts with advice."""
    intent = str(ds.get("PresentationIntentType", "") or "").strip().upper()
    if checks.presentation_only and (intent == "FOR PROCESSING" or _sop_class(ds) in (
            DX_FOR_PROCESSING, MAMMO_FOR_PROCESSING, INTRAORAL_FOR_PROCESSING)):
        raise _refuse(filename, "for_processing", "FOR PROCESSING image (raw detector data)")
    body_part = str(ds.get("BodyPartExamined", "") or "").strip().upper()
    view = str(ds.get("ViewPosition", "") or "").strip().upper()
    if not body_part:
        if not checks.allow_empty_body_part:
            raise _refuse(filename, "body_part_not_allowed", "Body Part Examined is empty")
        flags.append("body_part_empty")
    elif body_part not in checks.allowed_body_parts:
        raise _refuse(filename, "body_part_not_allowed",
                      f"BodyPartExamined {body_part} not in {', '.join(checks.allowed_body_parts)}")
    if not view:
        if not checks.allow_empty_view:
            raise _refuse(filename, "view_not_allowed", "View Position is empty")
        flags.append("view_empty")
    elif view not in checks.allowed_views:
        raise _refuse(filename, "view_not_allowed", f"ViewPosition {view} not in {', '.join(checks.allowed_views)}")
    spacing = _spacing(ds)
    lo, hi = checks.pixel_spacing_mm
    if spacing is None:
        flags.append("pixel_spacing_missing")
    elif not all(lo <= v <= hi for v in spacing):
        flags.append("pixel_spacing_implausible")


def _advice_flags(ds: Dataset, filename: str, allowed_body_parts, allowed_views, flags: list[str]) -> None:
    """Without trial checks: body part and view are advice (flags) unless an allowed list is given."""
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


def _check_stream(ds: Dataset, filename: str, ts: UID, g: _Geometry, limits: Limits) -> None:
    """Compressed data: a decoder must exist, and the stream's own header must agree with Rows/Columns
    (decoders size their output from it), RLE segments must decode to no more than declared."""
    if not (ts.is_encapsulated or not ts.is_transfer_syntax):
        return

    try:
        available = get_decoder(ts).is_available
    except (NotImplementedError, ValueError, KeyError):
        available = False
    if not available:
        raise _refuse(filename, "unsupported_transfer_syntax", f"no decoder installed for {ts} ({ts.name})")
    try:
        fragment = first_fragment(ds.PixelData, little=ts.is_little_endian)
        if ts == pydicom.uid.RLELossless:
            rle_segments_within(fragment, g.rows * g.columns, g.samples * ((g.bits_allocated + 7) // 8))
            return
        size = codestream_size(fragment)
    except BoundExceeded as exc:
        raise _refuse(filename, exc.kind, exc.message) from exc
    except (ValueError, struct.error, IndexError) as exc:
        raise _refuse(filename, "undecodable", f"compressed pixel data: {exc}") from exc
    if size is not None and size != (g.rows, g.columns, g.samples):
        rows, columns, components = size
        code = "too_large" if rows * columns * components > limits.max_pixels else "undecodable"
        raise _refuse(filename, code, f"the compressed stream declares {rows} x {columns} x {components}, the "
                                      f"header {g.rows} x {g.columns} x {g.samples}")


def _decode(ds: Dataset, filename: str, g: _Geometry) -> np.ndarray:
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a refusal, never a crash
        raise _refuse(filename, "undecodable", f"{type(exc).__name__}: {exc}") from exc
    if pixels.shape != (g.rows, g.columns):
        raise _refuse(filename, "undecodable", f"decoded shape {pixels.shape}, header says {(g.rows, g.columns)}")
    return pixels


def _validate(
    data: bytes,
    filename: str,
    *,
    allowed_modalities: tuple[str, ...],
    limits: Limits,
    allowed_body_parts: tuple[str, ...] | None,
    allowed_views: tuple[str, ...] | None,
    checks: ChestChecks | None,
    sha256: str | None = None,
) -> ValidatedInstance:
    flags: list[str] = []
    ds, ts = _parse(data, filename, limits, flags)
    _check_values(ds, filename, flags)
    g = _geometry(ds, filename, ts, limits)
    modality = _check_image_kind(ds, filename, g, allowed_modalities, limits.min_size)
    if checks is not None:
        _chest_checks(ds, filename, checks, flags)
    else:
        _advice_flags(ds, filename, allowed_body_parts, allowed_views, flags)
    if "PatientSpeciesDescription" in ds or "PatientSpeciesCodeSequence" in ds:
        flags.append("non_human")
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        flags.append("burned_in_annotation")
    if str(ds.get("LossyImageCompression", "")).strip() == "01" or ts in _LOSSY:
        flags.append("lossy_compressed")
    _check_stream(ds, filename, ts, g, limits)
    pixels = _decode(ds, filename, g)
    return ValidatedInstance(
        filename=filename,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        dataset=ds,
        pixels=pixels,
        transfer_syntax_uid=str(ts),
        modality=modality,
        rows=g.rows,
        columns=g.columns,
        flags=flags,
    )


_LOSSY = {
    UID("1.2.840.10008.1.2.4.50"), UID("1.2.840.10008.1.2.4.51"), UID("1.2.840.10008.1.2.4.81"),
    UID("1.2.840.10008.1.2.4.91"), UID("1.2.840.10008.1.2.4.93"), UID("1.2.840.10008.1.2.4.203"),
}
