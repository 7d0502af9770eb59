"""Synthetic DICOM radiographs built from PNG chest images, for tests and the demo.

:func:`make_secondary_capture_cxr` wraps a grayscale PNG (e.g. the NIH ChestX-ray14 PNGs in
``fixtures/cxr-png``) in a CR, DX, SC or CT data set with fake patient identifiers, dates, private tags and
optionally MONOCHROME1 / 16-bit / compressed pixel data. :func:`fill_profile_attributes` populates every
attribute of the confidentiality profile with a unique recognisable value, so de-identification can be
checked attribute by attribute. Every identifier made here is fictitious.
"""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom
from PIL import Image
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

from imaging.dicom.profile import BASIC_PROFILE

SOP_CLASSES = {
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "SC": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
}
Compression = Literal["rle", "jpeg2000", "jpeg_baseline"] | None

FAKE_PATIENT_ID = "PID-90210-FAKE"
FAKE_PATIENT_NAME = "Testperson^Fictitia^Q"
FAKE_ACCESSION = "ACC-77-31415"
FAKE_STUDY_DATE = "20230412"
FAKE_BIRTH_DATE = "19610705"
PRIVATE_CREATOR = "CXRTRIAL SYNTHETIC"
PRIVATE_SECRET = "PRIVATE-PHI-PATIENT-NICKNAME-ZORBA"


def _load_png(png_path: str | Path) -> np.ndarray:
    with Image.open(png_path) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)


def make_secondary_capture_cxr(
    png_path: str | Path,
    *,
    modality: str = "CR",
    sop_class: str | None = None,
    photometric: Literal["MONOCHROME1", "MONOCHROME2"] = "MONOCHROME2",
    bits_stored: int = 8,
    compression: Compression = None,
    pixel_data: bool = True,
    identifiers: bool = True,
    private_tags: bool = True,
    burned_in_annotation: bool = False,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    view_position: str = "PA",
    patient_id: str = FAKE_PATIENT_ID,
    patient_name: str = FAKE_PATIENT_NAME,
    pixels: np.ndarray | None = None,
) -> Dataset:
    """Build a single-frame grayscale radiograph data set from a PNG (or from ``pixels``).

    ``bits_stored`` 8 gives BitsAllocated 8; 9-16 gives BitsAllocated 16 with the PNG's values spread over the
    range. With ``photometric="MONOCHROME1"`` stored values are inverted, so the *rendered* image looks like
    the PNG. ``window`` = (center, width) in modality units; ``rescale`` = (slope, intercept).
    ``compression``: "rle" (pydicom's encoder), "jpeg2000" (lossless, pylibjpeg-openjpeg), "jpeg_baseline"
    (8-bit only, encoded by Pillow and encapsulated).
    """
    gray = _load_png(png_path) if pixels is None else np.asarray(pixels)
    if bits_stored <= 8:
        bits_allocated, maxval = 8, (1 << bits_stored) - 1
        stored = (gray.astype(np.float64) * maxval / 255.0).round().astype(np.uint8)
    else:
        bits_allocated, maxval = 16, (1 << bits_stored) - 1
        if gray.dtype == np.uint8:
            stored = (gray.astype(np.float64) * maxval / 255.0).round().astype(np.uint16)
        else:
            stored = np.clip(gray, 0, maxval).astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (maxval - stored.astype(np.int64)).astype(stored.dtype)

    modality = modality.upper()
    sop_class_uid = sop_class or SOP_CLASSES.get(modality, SOP_CLASSES["SC"])
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"] if sop_class_uid != SOP_CLASSES["SC"] else ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = modality
    ds.ConversionType = "WSD"
    ds.Manufacturer = "cxr-trial synthetic"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view_position
    ds.PatientOrientation = ["L", "F"]
    ds.ImageLaterality = "U"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientID = patient_id if identifiers else ""
    ds.PatientName = patient_name if identifiers else ""
    ds.PatientBirthDate = FAKE_BIRTH_DATE if identifiers else ""
    ds.PatientSex = "F" if identifiers else ""
    ds.StudyDate = FAKE_STUDY_DATE
    ds.StudyTime = "093015"
    ds.ContentDate = FAKE_STUDY_DATE
    ds.ContentTime = "093112"
    ds.AccessionNumber = FAKE_ACCESSION if identifiers else ""
    ds.ReferringPhysicianName = "Referrer^Fake" if identifiers else ""
    ds.StudyID = "STUDY-4242" if identifiers else ""
    if identifiers:
        ds.InstitutionName = "Fictional General Hospital"
        ds.InstitutionAddress = "1 Nowhere Lane, Atlantis"
        ds.StationName = "FAKE-CR-STN-7"
        ds.OperatorsName = "Operator^Fake"
        ds.OtherPatientIDs = "OTHER-PID-5551234"
        ds.PatientAddress = "42 Imaginary Road, Utopia"
        ds.PatientAge = "061Y"
        ds.StudyDescription = "XR CHEST PA for Fictitia Testperson"
        ds.ImageComments = "patient Testperson moved during exposure"
    ds.BurnedInAnnotation = "YES" if burned_in_annotation else "NO"
    ds.PixelSpacing = [0.143, 0.143]
    ds.ImagerPixelSpacing = [0.143, 0.143]
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.RescaleType = "US"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if private_tags:
        block = ds.private_block(0x0099, PRIVATE_CREATOR, create=True)
        block.add_new(0x01, "LO", PRIVATE_SECRET)
        block.add_new(0x02, "DA", "19991231")
        block.add_new(0x03, "UI", "1.2.3.4.5.6.7.8.9.999999")

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128

    if not pixel_data:
        return ds
    ds.PixelData = stored.tobytes()
    if compression == "rle":
        ds.compress(RLELossless, stored)
    elif compression == "jpeg2000":
        ds.compress(JPEG2000Lossless, stored)
    elif compression == "jpeg_baseline":
        if bits_allocated != 8:
            raise ValueError("JPEG baseline is 8-bit only")
        buf = io.BytesIO()
        Image.fromarray(stored, mode="L").save(buf, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = f"{stored.nbytes / len(buf.getvalue()):.2f}"[:16]
        ds.LossyImageCompressionMethod = "ISO_10918_1"
    elif compression is not None:
        raise ValueError(f"unknown compression {compression!r}")
    return ds


def to_bytes(ds: Dataset, *, implicit_no_meta: bool = False) -> bytes:
    """Serialise; ``implicit_no_meta`` writes a bare implicit VR data set (no preamble, no meta), as old
    archives hold."""
    if implicit_no_meta:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, True
        write_dataset(fp, ds)
        return fp.getvalue()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def truncate(data: bytes, keep: float | int) -> bytes:
    """The first ``keep`` bytes (int) or fraction (float) of a serialised file."""
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    return data[:n]


# ---------------------------------------------------------------- profile-wide identifiers for de-id tests

_SKIP_GROUPS = {0x0000, 0x0002, 0xFFFA, 0xFFFC}
_NOT_SETTABLE = {0x00880200}  # Icon Image Sequence: set separately below (needs an image item)


_DATE_TIME_VRS = ("DA", "TM", "DT")
_NUMBER_VRS = ("IS", "DS", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT")


def _unique_date_time(tag: int, vr: str, index: int) -> str:
    """A unique DA, TM or DT value."""
    if vr == "DA":
        return (dt.date(1950, 1, 1) + dt.timedelta(days=97 * index + 13)).strftime("%Y%m%d")
    if vr == "TM":
        return f"{(index * 7) % 24:02d}{(index * 13) % 60:02d}{(index * 17) % 60:02d}.{tag % 999983:06d}"
    day = (dt.date(1940, 3, 1) + dt.timedelta(days=89 * index + 5)).strftime("%Y%m%d")  # DT
    return f"{day}{(index * 5) % 24:02d}{(index * 11) % 60:02d}{(index * 3) % 60:02d}.{tag % 999979:06d}"


def _unique_number(tag: int, vr: str, index: int) -> object:
    """A unique value for a numeric VR (IS and DS as their strings; AT a fixed tag)."""
    if vr == "IS":
        return str(700000000 + tag % 100000000 + index)[:12]
    if vr == "DS":
        return f"{index + 1}.{tag:08d}"[:16]
    if vr in ("US", "SS"):
        return 1000 + index
    if vr in ("UL", "SL", "UV", "SV"):
        return 100000 + index
    if vr in ("FL", "FD"):
        return 1000.5 + index
    return 0x00100010  # AT


def _unique_value(tag: int, vr: str, index: int) -> object:
    """A value that is unique to this attribute and easy to find in the file bytes."""
    if vr in _DATE_TIME_VRS:
        return _unique_date_time(tag, vr, index)
    if vr in _NUMBER_VRS:
        return _unique_number(tag, vr, index)
    if vr == "UI":
        return f"1.2.826.0.1.3680043.10.1234.{tag}.{index}"
    if vr == "PN":
        return f"Phi{tag:08X}^Given{index}"
    if vr == "AS":
        return f"{(index % 899) + 100:03d}Y"[-4:]
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return f"PHIBYTES{tag:08X}".encode()
    if vr in ("CS", "AE"):
        return f"PHI{tag:08X}"
    if vr == "SH":
        return f"S{tag:08X}Z{index:03d}"[:16]
    return f"PHI-{tag:08X}-{index:03d}-value"  # LO, LT, ST, UT, UC, UR


def fill_profile_attributes(ds: Dataset) -> dict[int, object]:
    """Set every attribute of Table E.1-1 that a data set can carry to a unique value; return tag -> value.

    Sequences get one item holding a unique Code Value / Code Meaning / Long Code Value so the nested
    identifying text can be searched for. Attributes the image needs (Study/Series/SOP Instance UID, Patient
    ID/Name, Study Date...) are overwritten too: the point is that the whole table is exercised.
    """
    values: dict[int, object] = {}
    for index, tag in enumerate(sorted(BASIC_PROFILE)):
        if tag >> 16 in _SKIP_GROUPS or tag in _NOT_SETTABLE:
            continue
        vr = dictionary_VR(tag).split(" ")[0]
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = f"C{tag:08X}"[:16]
            item.CodingSchemeDesignator = "99PHI"
            item.CodeMeaning = f"PHI-seq-{tag:08X}-meaning"
            ds.add_new(tag, "SQ", Sequence([item]))
            values[tag] = item.CodeMeaning
            continue
        if vr in ("US or SS", "OB or OW"):
            vr = vr.split(" ")[0]
        value = _unique_value(tag, vr, index)
        ds.add_new(tag, vr, value)
        values[tag] = value
    # Repeating groups: overlay data + comments, curve data.
    ds.add_new(0x60004000, "LT", "PHI-overlay-comment-Testperson")
    ds.add_new(0x60003000, "OW", b"PHI-OVERLAY-BYTES-")
    ds.add_new(0x50000000 | 0x3000, "OB", b"PHI-CURVE-BYTES-")
    values[0x60004000] = "PHI-overlay-comment-Testperson"
    values[0x60003000] = b"PHI-OVERLAY-BYTES-"
    values[0x50003000] = b"PHI-CURVE-BYTES-"
    # Identifiers nested in a sequence the profile keeps (recursion check): Anatomic Region Sequence.
    region = Dataset()
    region.CodeValue = "51185008"
    region.CodingSchemeDesignator = "SCT"
    region.CodeMeaning = "Chest"
    region.PatientName = "Nested^Phi^Name"
    region.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.1234.77.77"
    ds.AnatomicRegionSequence = Sequence([region])
    return values
