"""De-identification: DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Applies :data:`imaging.dicom.profile.BASIC_PROFILE` (Table E.1-1) to the whole data set, recursing into
sequences that are kept, and:

* removes every private attribute (odd group), curve (50xx) and overlay (60xx) group and group lengths;
* replaces UIDs (action U) deterministically per trial: ``2.25.<int of a UUIDv8 made from
  HMAC-SHA256(trial secret, original UID)>``, so the same input UID in the same trial always maps to the
  same output UID (studies stay grouped; re-import is idempotent) while the mapping cannot be reversed or
  recomputed without the secret;
* dates: ``date_policy="shift"`` applies the *Retain Longitudinal Temporal Information with Modified Dates*
  option: every DA/DT attribute the option marks is shifted by ``date_shift_days`` (use one shift per
  patient so intervals survive), times of day are kept; ``"remove"`` applies the basic actions (emptied or
  removed; dummy ``19000101`` where the profile requires a value). Patient's Birth Date is always emptied;
* keeps everything the profile does not list, which includes all that reading needs: pixel data,
  photometric interpretation, bits, pixel spacing / imager pixel spacing, view position, laterality,
  window centre/width, VOI LUT, modality LUT / rescale, body part;
* sets Patient ID and Patient's Name to the case pseudonym, Patient Identity Removed = YES,
  De-identification Method (+ Code Sequence, CID 7050 codes) and Longitudinal Temporal Information Modified;
* rebuilds the file meta information (Media Storage SOP Instance UID = the new SOP Instance UID).

Pixel data are not altered: ``burned_in_annotation`` is returned True when Burned In Annotation is YES so the
caller can hold the image for review (the Clean Pixel Data option is not implemented).
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import io
import uuid
from dataclasses import dataclass
from typing import Literal, NamedTuple

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from imaging.dicom.profile import BASIC_PROFILE, profile_action

DatePolicy = Literal["shift", "remove"]
IMPLEMENTATION_VERSION_NAME = "CXRTRIAL_DEID_1"
DEIDENTIFICATION_METHOD = "PS3.15 E.1 Basic Profile (cxr-trial)"

_DUMMY_BY_VR = {
    "DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMIZED", "AS": "000Y",
    "IS": "0", "DS": "0", "CS": "ANONYMIZED", "AE": "ANONYMIZED",
}
_BINARY_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"}
_BYTES_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
# CID 7050 De-identification Method codes (DCM).
_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
}


@dataclass(frozen=True)
class KeyEntry:
    """One original -> pseudonymous identifier (``kind`` matches IdentityKey.kind)."""

    kind: str  # patient_id | study_uid | series_uid | sop_uid
    original: str
    pseudonym: str


class DeidResult(NamedTuple):
    dataset: Dataset
    key_entries: list[KeyEntry]
    burned_in_annotation: bool


def pseudonymous_uid(uid: str, secret: str) -> str:
    """``2.25.`` + the integer of a UUIDv8 built from HMAC-SHA256(secret, uid): stable per trial secret."""
    digest = hmac.new(secret.encode("utf-8"), str(uid).strip().encode("ascii", "replace"), hashlib.sha256)
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (custom, RFC 9562)
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return f"2.25.{uuid.UUID(bytes=bytes(raw)).int}"


def _shift_date(value: str, days: int) -> str | None:
    value = value.strip()
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        day = dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        return None
    return (day + dt.timedelta(days=days)).strftime("%Y%m%d")


def _shift_da(value: str, days: int) -> str | None:
    if "-" in value:  # a range (query-style, rare in stored instances)
        parts = [_shift_date(p, days) if p else "" for p in value.split("-", 1)]
        return None if None in parts else "-".join(p or "" for p in parts)
    return _shift_date(value, days)


def _shift_dt(value: str, days: int) -> str | None:
    value = value.strip()
    shifted = _shift_date(value[:8], days)
    return None if shifted is None else shifted + value[8:]


def _shift_element(elem: DataElement, days: int) -> None:
    """Shift a DA or DT element in place; values that cannot be shifted exactly are emptied."""
    shift = _shift_da if elem.VR == "DA" else _shift_dt
    values = list(elem.value) if elem.VM > 1 else [elem.value]
    out = []
    for value in values:
        shifted = shift(str(value), days) if value not in (None, "") else ""
        if shifted is None:
            elem.value = ""
            return
        out.append(shifted)
    elem.value = out if len(out) > 1 else out[0]


def _empty(elem: DataElement) -> None:
    if elem.VR == "SQ":
        elem.value = Sequence()
    elif elem.VR in _BINARY_NUMBER_VRS or elem.VR in _BYTES_VRS:
        elem.value = None
    else:
        elem.value = ""


def _dummy(elem: DataElement) -> None:
    if elem.VR == "SQ":
        elem.value = Sequence()  # documented simplification: an empty sequence, not dummy items
    elif elem.VR in _BINARY_NUMBER_VRS:
        elem.value = 0
    elif elem.VR in _BYTES_VRS:
        elem.value = b"\x00\x00"
    else:
        elem.value = _DUMMY_BY_VR.get(elem.VR, "ANONYMIZED")


class _Deidentifier:
    def __init__(self, secret: str, date_policy: DatePolicy, days: int, keep_characteristics: bool):
        self.secret = secret
        self.date_policy = date_policy
        self.days = days
        self.keep_characteristics = keep_characteristics

    def uid(self, value: str) -> str:
        return pseudonymous_uid(value, self.secret)

    def process(self, ds: Dataset) -> None:
        for tag in list(ds.keys()):
            elem = ds[tag]
            tag_int = int(tag)
            if tag.element == 0x0000:  # group lengths: stale after editing, retired anyway
                del ds[tag]
                continue
            action = profile_action(tag_int)
            entry = BASIC_PROFILE.get(tag_int)
            if action is None or action == "K":
                if elem.VR == "SQ":
                    for item in elem.value or []:
                        self.process(item)
                continue
            if entry is not None and self.keep_characteristics and entry.patient_characteristic:
                continue
            if (entry is not None and entry.temporal and self.date_policy == "shift"
                    and elem.VR in ("DA", "DT", "TM")):
                if elem.VR != "TM" and elem.value not in (None, ""):
                    _shift_element(elem, self.days)
                continue
            if action == "X":
                del ds[tag]
            elif action == "Z":
                _empty(elem)
            elif action == "D":
                if elem.VR == "UI":
                    self.replace_uid(elem)
                else:
                    _dummy(elem)
            elif action == "U":
                if elem.VR == "SQ":  # not in the table today; be safe
                    for item in elem.value or []:
                        self.process(item)
                else:
                    self.replace_uid(elem)
            else:  # pragma: no cover - the table only holds the codes above
                del ds[tag]

    def replace_uid(self, elem: DataElement) -> None:
        if elem.value in (None, ""):
            return
        if elem.VM > 1:
            elem.value = [self.uid(str(v)) for v in elem.value]
        else:
            elem.value = self.uid(str(elem.value))


def _code_item(key: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodeMeaning = _CODES[key]
    item.CodingSchemeDesignator = "DCM"
    return item


def deidentify(
    ds: Dataset,
    *,
    uid_root_secret: str,
    date_policy: DatePolicy = "shift",
    date_shift_days: int = 0,
    pseudonym: str,
    keep_patient_characteristics: bool = False,
) -> DeidResult:
    """Return (de-identified copy, original->pseudonym key entries, burned-in annotation flag).

    The input data set is not modified. ``uid_root_secret``: the trial's secret (never stored in the output).
    ``keep_patient_characteristics`` applies the Retain Patient Characteristics option (sex, age, size,
    weight, ethnic group, smoking and pregnancy status are kept).
    """
    if not uid_root_secret:
        raise ValueError("uid_root_secret is required")
    if date_policy not in ("shift", "remove"):
        raise ValueError("date_policy must be 'shift' or 'remove'")
    if not pseudonym or len(pseudonym) > 64:
        raise ValueError("pseudonym must be 1-64 characters")

    burned_in = str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES"
    originals = {
        "patient_id": str(ds.get("PatientID", "") or ""),
        "study_uid": str(ds.get("StudyInstanceUID", "") or ""),
        "series_uid": str(ds.get("SeriesInstanceUID", "") or ""),
        "sop_uid": str(ds.get("SOPInstanceUID", "") or ""),
    }
    transfer_syntax = (getattr(ds, "file_meta", None) or Dataset()).get("TransferSyntaxUID")

    clean = copy.deepcopy(ds)
    clean.file_meta = FileMetaDataset()
    clean.remove_private_tags()
    worker = _Deidentifier(uid_root_secret, date_policy, date_shift_days, keep_patient_characteristics)
    worker.process(clean)

    clean.PatientID = pseudonym
    clean.PatientName = pseudonym
    clean.PatientIdentityRemoved = "YES"
    clean.DeidentificationMethod = DEIDENTIFICATION_METHOD
    codes = [_code_item("basic")]
    if date_policy == "shift":
        codes.append(_code_item("modified_dates"))
    if keep_patient_characteristics:
        codes.append(_code_item("patient_characteristics"))
    clean.DeidentificationMethodCodeSequence = Sequence(codes)
    clean.LongitudinalTemporalInformationModified = "MODIFIED" if date_policy == "shift" else "REMOVED"
    for key, keyword in (("study_uid", "StudyInstanceUID"), ("series_uid", "SeriesInstanceUID"),
                         ("sop_uid", "SOPInstanceUID")):
        if not originals[key]:  # type 1 attributes: make them exist
            setattr(clean, keyword, worker.uid(f"missing:{keyword}:{originals['sop_uid']}:{pseudonym}"))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = clean.get("SOPClassUID", UID("1.2.840.10008.5.1.4.1.1.7"))
    meta.MediaStorageSOPInstanceUID = clean.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax or pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    clean.file_meta = meta
    clean.preamble = b"\x00" * 128

    keys = [KeyEntry("patient_id", originals["patient_id"], pseudonym)] if originals["patient_id"] else []
    for kind, keyword in (("study_uid", "StudyInstanceUID"), ("series_uid", "SeriesInstanceUID"),
                          ("sop_uid", "SOPInstanceUID")):
        if originals[kind]:
            keys.append(KeyEntry(kind, originals[kind], str(clean.get(keyword))))
    return DeidResult(clean, keys, burned_in)


def to_bytes(ds: Dataset) -> bytes:
    """Serialise as a DICOM Part 10 file (preamble, DICM, file meta) in the data set's transfer syntax."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
