"""Header summary of an instance: the fields the Image model stores."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from pydicom.dataset import Dataset


@dataclass(frozen=True)
class InstanceSummary:
    modality: str
    view_position: str
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    photometric_interpretation: str
    pixel_spacing: list[float] | None  # [row, column] mm; Pixel Spacing, else Imager Pixel Spacing
    pixel_spacing_source: str  # PixelSpacing | ImagerPixelSpacing | ""
    pixel_spacing_kind: str  # calibrated | detector | unstated | "" (spacing_kind)
    study_instance_uid: str
    sop_instance_uid: str
    body_part_examined: str
    laterality: str
    patient_age: str  # Patient's Age (AS, e.g. "064Y") of the de-identified data set: kept only by the
    patient_sex: str  # Retain Patient Characteristics option; M | F | O | "" (the basic profile empties it)

    def as_dict(self) -> dict:
        return asdict(self)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str) -> int:
    try:
        return int(ds.get(keyword, 0) or 0)
    except (TypeError, ValueError):
        return 0


def _pair(ds: Dataset, keyword: str) -> list[float] | None:
    try:
        pair = [float(v) for v in ds.get(keyword) or []]
    except (TypeError, ValueError):
        return None
    return pair if len(pair) == 2 and all(v > 0 for v in pair) else None


def spacing_kind(ds: Dataset) -> str:
    """What the spacing used for measurement means (PS3.3 sections 10.7.1.3 and C.8.11.4.1.2): "calibrated" when
    Pixel Spacing has a Pixel Spacing Calibration Type or differs from Imager Pixel Spacing (corrected to the
    patient); "detector" when only Imager Pixel Spacing is given or Pixel Spacing merely repeats it (at the detector
    face, not corrected for geometric magnification, about 10% for a PA chest); "unstated" for Pixel Spacing
    alone without a calibration type; "" without spacing."""
    pixel, imager = _pair(ds, "PixelSpacing"), _pair(ds, "ImagerPixelSpacing")
    if pixel is None:
        return "detector" if imager else ""
    if _text(ds, "PixelSpacingCalibrationType"):
        return "calibrated"
    if imager is None:
        return "unstated"
    return "detector" if all(abs(a - b) < 1e-6 for a, b in zip(pixel, imager, strict=True)) else "calibrated"


def _age(ds: Dataset) -> str:
    """Patient's Age as DICOM writes it (nnnD/W/M/Y); anything else counts as absent."""
    value = _text(ds, "PatientAge").upper()
    return value if re.fullmatch(r"\d{3}[DWMY]", value) and value != "000Y" else ""


def instance_summary(ds: Dataset) -> InstanceSummary:
    """Summarise a (validated or de-identified) data set. Zero spacings count as absent."""
    spacing, source = None, ""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = _pair(ds, keyword)
        if pair is not None:
            spacing, source = pair, keyword
            break
    bits_allocated = _int(ds, "BitsAllocated")
    return InstanceSummary(
        modality=_text(ds, "Modality").upper(),
        view_position=_text(ds, "ViewPosition").upper(),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        bits_allocated=bits_allocated,
        bits_stored=_int(ds, "BitsStored") or bits_allocated,
        photometric_interpretation=_text(ds, "PhotometricInterpretation").upper(),
        pixel_spacing=spacing,
        pixel_spacing_source=source,
        pixel_spacing_kind=spacing_kind(ds),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        body_part_examined=_text(ds, "BodyPartExamined").upper(),
        laterality=(_text(ds, "ImageLaterality") or _text(ds, "Laterality")).upper(),
        patient_age=_age(ds),
        patient_sex=_text(ds, "PatientSex").upper() if _text(ds, "PatientSex").upper() in ("M", "F", "O") else "",
    )
