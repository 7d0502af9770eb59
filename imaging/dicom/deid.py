"""De-identification: DICOM PS3.15 Annex E, Table E.1-1 (rev 2024b), with the options a trial chooses.

Applies :data:`imaging.dicom.profile.BASIC_PROFILE` (the standard's table, as data) to the whole data set,
recursing into sequences that are kept, and:

* removes every private attribute (odd group), curve (50xx) and overlay (60xx) group and group lengths;
* replaces UIDs (action U, and D on a UI) deterministically per trial: ``2.25.<int of a UUIDv8 made from
  HMAC-SHA256(trial secret, original UID)>``, so the same input UID in the same trial always maps to the
  same output UID (studies stay grouped; re-import is idempotent) while the mapping cannot be reversed or
  recomputed without the secret;
* dates and times, ``date_policy="shift"``: the *Retain Longitudinal Temporal Information with Modified
  Dates* option. Every DA, DT and TM value (those the option marks C, and any other left by the profile) is
  shifted by one offset **per patient**: a number of days (1 to 10 years back) plus a number of seconds
  (times of day move too), derived with HMAC-SHA256 from the trial secret and the original patient id
  (:func:`patient_time_shift`). A date and its time (``...Date`` / ``...Time`` in the same item) move
  together as one instant, a DT moves as an instant, a lone date as midnight, a lone time modulo a day; so a
  patient's intervals are kept exactly while one known date reveals nothing about other patients.
  ``"remove"``: the basic actions, and any other DA/DT/TM emptied. Patient's Birth Date is always emptied;
* *Clean Descriptors* (option): a descriptor the table marks C is kept only when every word of it is in a
  short chest-radiography vocabulary (``CHEST PA``, ``XR THORAX 2 VIEWS``); otherwise the basic action;
* *Clean Graphics* (option): Graphic Annotation items keep their graphic objects and lose their text objects
  (the rest of the item is de-identified like any item); overlays and curves are removed (their text and
  bitmaps cannot be cleaned without reading them);
* keeps everything the profile does not list, which includes all that reading needs: pixel data,
  photometric interpretation, bits, pixel spacing / imager pixel spacing, view position, laterality,
  window centre/width, VOI LUT, modality LUT / rescale, body part;
* sets Patient ID and Patient's Name to the case pseudonym, De-identification Method (+ Code Sequence, the
  CID 7050 code of the profile and of each option applied), Longitudinal Temporal Information Modified, and
  Patient Identity Removed: YES only when the whole profile applied, i.e. also the pixels are known to carry
  no identifying text (Burned In Annotation not YES, and the caller did not hold them for review);
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
import re
import uuid
from dataclasses import dataclass
from typing import Literal, NamedTuple

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from imaging.dicom.profile import BASIC_PROFILE, STANDARD_REVISION, profile_action

DatePolicy = Literal["shift", "remove"]
IMPLEMENTATION_VERSION_NAME = "CXRTRIAL_DEID_2"

_DUMMY_BY_VR = {
    "DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMIZED", "AS": "000Y",
    "IS": "0", "DS": "0", "CS": "ANONYMIZED", "AE": "ANONYMIZED",
}
_BINARY_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"}
_BYTES_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "CS"}
_TEMPORAL_VRS = {"DA", "DT", "TM"}
# PS3.16 CID 7050 De-identification Method codes (DCM).
_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
}
# Clean Descriptors: words a chest radiograph's descriptions use that identify nobody. Anything else (names,
# numbers beyond one digit, places, free text) makes the value go.
SAFE_DESCRIPTOR_WORDS = frozenset("""
    CHEST THORAX THORACIC LUNG LUNGS RIB RIBS HEART XR X RAY XRAY RAD RADIOGRAPH RADIOGRAPHY CR DX DR PA AP LAT
    LATERAL LL RL LEFT RIGHT FRONTAL OBLIQUE VIEW VIEWS PORTABLE MOBILE BEDSIDE ERECT UPRIGHT SUPINE SEMI
    DECUBITUS STANDING SITTING INSPIRATION EXPIRATION ROUTINE SCOUT ADULT PEDIATRIC PAEDIATRIC AND OR OF THE
    WITH W WO PRE POST FOLLOW UP SINGLE 1 2 3 4 ONE TWO THREE IMAGE IMAGES SERIES STUDY EXAM EXAMINATION
    DEFAULT STANDARD GRID NO
""".split())
_WORD_RE = re.compile(r"[A-Z0-9]+")
# Clean Graphics: what a Graphic Annotation item keeps (layer, referenced images, graphic objects) and what a
# graphic object keeps (its geometry); text objects and everything else go.
_GRAPHIC_ITEM_KEEP = frozenset({0x00700002, 0x00081140, 0x00700009})
_GRAPHIC_OBJECT_KEEP = frozenset({0x00700005, 0x00700020, 0x00700021, 0x00700022, 0x00700023, 0x00700024})


@dataclass(frozen=True)
class DeidOptions:
    """The PS3.15 options a trial applies (recorded in DeidentificationMethodCodeSequence)."""

    clean_descriptors: bool = True
    clean_graphics: bool = True
    keep_patient_characteristics: bool = False
    #: False when the caller holds the pixels for review (e.g. Burned In Annotation absent on CR/DX and the
    #: trial asks for review): Patient Identity Removed is then NO.
    pixels_cleared: bool = True


@dataclass(frozen=True)
class TimeShift:
    """One patient's offset: ``days`` (negative, 1 to 10 years) and ``seconds`` (1 to 86399) added."""

    days: int
    seconds: int

    @property
    def delta(self) -> dt.timedelta:
        return dt.timedelta(days=self.days, seconds=self.seconds)


def patient_time_shift(secret: str, patient_key: str) -> TimeShift:
    """The keyed offset of one patient: HMAC-SHA256(trial secret, "date-shift" + original patient key).

    The same patient always gets the same offset within a trial (intervals between studies are kept); two
    patients get unrelated offsets, and nobody without the secret can compute one from a patient id.
    """
    digest = hmac.new(secret.encode("utf-8"), b"date-shift\x00" + patient_key.encode("utf-8", "replace"),
                      hashlib.sha256).digest()
    days = -(365 + int.from_bytes(digest[:4], "big") % 3286)
    seconds = 1 + int.from_bytes(digest[4:8], "big") % 86399
    return TimeShift(days, seconds)


def patient_key(ds: Dataset) -> str:
    """What identifies the patient for the date offset: issuer + Patient ID; without a Patient ID the study
    (its studies then cannot be linked, and each gets its own offset)."""
    pid = str(ds.get("PatientID", "") or "").strip()
    if pid:
        return f"patient:{str(ds.get('IssuerOfPatientID', '') or '').strip()}\x00{pid}"
    study = str(ds.get("StudyInstanceUID", "") or "").strip()
    return f"study:{study}" if study else f"instance:{str(ds.get('SOPInstanceUID', '') or '').strip()}"


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


# ---------------------------------------------------------------------------------------------- dates/times
def _parse_date(value: str) -> dt.date | None:
    digits = value.strip().replace(".", "")  # "YYYY.MM.DD" is the ACR-NEMA form
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


def _parse_time(value: str) -> tuple[dt.time, str] | None:
    """(time, fraction digits) from HH[MM[SS[.F{1,6}]]] (colons tolerated)."""
    text = value.strip().replace(":", "")
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (frac and not frac.isdigit()):
        return None
    parts = [int(whole[i:i + 2]) for i in range(0, len(whole), 2)] + [0, 0]
    try:
        return dt.time(parts[0], parts[1], min(parts[2], 59), int((frac or "0")[:6].ljust(6, "0"))), frac[:6]
    except ValueError:
        return None


def _fmt_time(moment: dt.datetime, frac: str) -> str:
    text = moment.strftime("%H%M%S")
    return f"{text}.{moment.strftime('%f')[:len(frac)]}" if frac else text


def _shift_dt_value(value: str, delta: dt.timedelta) -> str | None:
    text = value.strip()
    offset = ""
    for sign in "+-":
        if sign in text[4:]:
            cut = text.index(sign, 4)
            text, offset = text[:cut], text[cut:]
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or len(whole) < 4 or len(whole) % 2 or len(whole) > 14:
        return None
    padded = (whole + "0101000000"[len(whole) - 4:]) if len(whole) < 14 else whole
    try:
        moment = dt.datetime.strptime(padded, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    moment = moment.replace(microsecond=int((frac or "0")[:6].ljust(6, "0"))) + delta
    out = moment.strftime("%Y%m%d%H%M%S")
    return out + (f".{moment.strftime('%f')[:len(frac[:6])]}" if frac else "") + offset


def _values(elem: DataElement) -> list[str]:
    if elem.value in (None, ""):
        return []
    return [str(v) for v in (elem.value if elem.VM > 1 else [elem.value])]


def _set_values(elem: DataElement, values: list[str | None]) -> None:
    """Write shifted values back; one that could not be shifted empties the element (nothing leaks)."""
    if any(v is None for v in values):
        elem.value = ""
    else:
        elem.value = values if len(values) > 1 else (values[0] if values else "")


def _shift_alone(elem: DataElement, shift: TimeShift) -> None:
    delta = shift.delta
    out: list[str | None] = []
    for value in _values(elem):
        if elem.VR == "DT":
            out.append(_shift_dt_value(value, delta))
        elif elem.VR == "DA":
            day = _parse_date(value)
            out.append(None if day is None else (day + dt.timedelta(days=shift.days)).strftime("%Y%m%d"))
        else:
            parsed = _parse_time(value)
            if parsed is None:
                out.append(None)
                continue
            moment = dt.datetime.combine(dt.date(2000, 1, 1), parsed[0]) + dt.timedelta(seconds=shift.seconds)
            out.append(_fmt_time(moment, parsed[1]))
    if out:
        _set_values(elem, out)


def _shift_pair(date_elem: DataElement, time_elem: DataElement, shift: TimeShift) -> bool:
    """Shift a single-valued date and its time as one instant; False when they are not a simple pair."""
    dates, times = _values(date_elem), _values(time_elem)
    if len(dates) != 1 or len(times) != 1:
        return False
    day, parsed = _parse_date(dates[0]), _parse_time(times[0])
    if day is None or parsed is None:
        return False
    moment = dt.datetime.combine(day, parsed[0]) + shift.delta
    date_elem.value = moment.strftime("%Y%m%d")
    time_elem.value = _fmt_time(moment, parsed[1])
    return True


def shift_temporal(ds: Dataset, tags: list[int], shift: TimeShift) -> None:
    """Shift the DA/DT/TM elements ``tags`` of one data set (not its sequences) by one patient's offset."""
    by_keyword = {ds[t].keyword: t for t in tags if ds[t].keyword}
    done: set[int] = set()
    for keyword, tag in by_keyword.items():
        if ds[tag].VR != "DA" or not keyword.endswith("Date"):
            continue
        time_tag = by_keyword.get(keyword[:-4] + "Time")
        if time_tag is not None and ds[time_tag].VR == "TM" and _shift_pair(ds[tag], ds[time_tag], shift):
            done |= {tag, time_tag}
    for tag in tags:
        if tag not in done:
            _shift_alone(ds[tag], shift)


# ---------------------------------------------------------------------------------------------- the profile
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


def safe_descriptor(value: object) -> bool:
    """True when every word of a descriptor is in :data:`SAFE_DESCRIPTOR_WORDS` (Clean Descriptors)."""
    words = _WORD_RE.findall(str(value).upper())
    return bool(words) and all(w in SAFE_DESCRIPTOR_WORDS for w in words)


def _keep_only(item: Dataset, keep: frozenset[int]) -> None:
    for tag in [t for t in item.keys() if int(t) not in keep]:
        del item[tag]


class _Deidentifier:
    def __init__(self, secret: str, date_policy: DatePolicy, shift: TimeShift, options: DeidOptions):
        self.secret = secret
        self.date_policy = date_policy
        self.shift = shift
        self.options = options

    def uid(self, value: str) -> str:
        return pseudonymous_uid(value, self.secret)

    def process(self, ds: Dataset) -> None:
        temporal: list[int] = []
        for tag in list(ds.keys()):
            if tag.element == 0x0000:  # group lengths: stale after editing, retired anyway
                del ds[tag]
                continue
            if self._element(ds, ds[tag]):
                temporal.append(int(tag))
        if temporal:
            if self.date_policy == "shift":
                shift_temporal(ds, temporal, self.shift)
            else:
                for tag in temporal:
                    _empty(ds[tag])

    def _kept(self, elem: DataElement, entry) -> bool:
        """Whether an option keeps this listed attribute (cleaned where the option says C)."""
        if self.options.keep_patient_characteristics and entry.patient_characteristic:
            return True
        if self.date_policy == "shift" and entry.temporal and elem.VR in _TEMPORAL_VRS:
            return True
        if self.options.clean_descriptors and entry.clean_descriptor and elem.VR in _TEXT_VRS:
            return all(safe_descriptor(v) for v in _values(elem))
        if self.options.clean_graphics and entry.clean_graphics and elem.VR == "SQ":
            for item in elem.value or []:
                _keep_only(item, _GRAPHIC_ITEM_KEEP)
                for graphic in item[0x00700009].value if 0x00700009 in item else []:
                    _keep_only(graphic, _GRAPHIC_OBJECT_KEEP)
            return True
        return False

    def _element(self, ds: Dataset, elem: DataElement) -> bool:
        """Apply the profile to one element; True when it is a date/time left for the shift pass."""
        action = profile_action(int(elem.tag))
        entry = BASIC_PROFILE.get(int(elem.tag))
        if action is None or (entry is not None and self._kept(elem, entry)):
            if elem.VR == "SQ":
                for item in elem.value or []:
                    self.process(item)
            return elem.VR in _TEMPORAL_VRS and elem.value not in (None, "")
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            _empty(elem)
        elif action in ("D", "U") and elem.VR == "UI":
            self.replace_uid(elem)
        elif action == "D":
            _dummy(elem)
        elif action == "U" and elem.VR == "SQ":  # not in the table today; be safe
            for item in elem.value or []:
                self.process(item)
        elif action == "U":
            self.replace_uid(elem)
        else:  # K or anything unforeseen: the profile lists it, so it goes
            del ds[elem.tag]
        return False

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


def _method(date_policy: DatePolicy, options: DeidOptions) -> tuple[str, list[Dataset]]:
    keys = ["basic"]
    if date_policy == "shift":
        keys.append("modified_dates")
    if options.clean_descriptors:
        keys.append("clean_descriptors")
    if options.clean_graphics:
        keys.append("clean_graphics")
    if options.keep_patient_characteristics:
        keys.append("patient_characteristics")
    text = f"PS3.15 {STANDARD_REVISION} E.1-1 " + ", ".join(k.replace("_", " ") for k in keys) + " (cxr-trial)"
    return text[:64], [_code_item(k) for k in keys]


def deidentify(
    ds: Dataset,
    *,
    uid_root_secret: str,
    date_policy: DatePolicy = "shift",
    pseudonym: str,
    options: DeidOptions | None = None,
    time_shift: TimeShift | None = None,
    keep_patient_characteristics: bool = False,
) -> DeidResult:
    """Return (de-identified copy, original->pseudonym key entries, burned-in annotation flag).

    The input data set is not modified. ``uid_root_secret``: the trial's secret (never stored in the output);
    it also keys the per-patient date offset (``time_shift`` overrides it, for tests).
    ``keep_patient_characteristics`` applies the Retain Patient Characteristics option (sex, age, size,
    weight, ethnic group, smoking and pregnancy status are kept).
    """
    if not uid_root_secret:
        raise ValueError("uid_root_secret is required")
    if date_policy not in ("shift", "remove"):
        raise ValueError("date_policy must be 'shift' or 'remove'")
    if not pseudonym or len(pseudonym) > 64:
        raise ValueError("pseudonym must be 1-64 characters")
    options = options or DeidOptions()
    if keep_patient_characteristics:
        options = DeidOptions(options.clean_descriptors, options.clean_graphics, True, options.pixels_cleared)
    shift = time_shift or patient_time_shift(uid_root_secret, patient_key(ds))

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
    worker = _Deidentifier(uid_root_secret, date_policy, shift, options)
    worker.process(clean)

    clean.PatientID = pseudonym
    clean.PatientName = pseudonym
    clean.PatientIdentityRemoved = "YES" if options.pixels_cleared and not burned_in else "NO"
    clean.DeidentificationMethod, codes = _method(date_policy, options)
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
