"""De-identification to PS3.15 rev2024b (issue 14, part 3): the table as data, every attribute also nested in
sequences, every DA/DT/TM shifted per patient (dates and times of day), Clean Descriptors and Clean Graphics."""
from __future__ import annotations

import datetime as dt
import io
import json

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from imaging.dicom import DeidOptions, TimeShift, deidentify, patient_time_shift, to_bytes
from imaging.dicom.deid import safe_descriptor
from imaging.dicom.profile import BASIC_PROFILE, PATTERNS, STANDARD_REVISION, TABLE_FILE
from imaging.dicom.synthetic import fill_profile_attributes, make_secondary_capture_cxr

SECRET = "trial-secret-standard-0123456789"
SHIFT = TimeShift(days=-411, seconds=5 * 3600 + 7 * 60 + 3)
TEMPORAL = ("DA", "DT", "TM")


def test_table_is_the_standards_file():
    rows = json.loads(TABLE_FILE.read_text())
    assert STANDARD_REVISION == "2024b" and len(rows) == 621
    assert len(BASIC_PROFILE) + len(PATTERNS) == len(rows)
    assert {p["tag"] for p in PATTERNS} == {"(50XX,XXXX)", "(60XX,3000)", "(60XX,4000)",
                                           "(GGGG,EEEE) WHERE GGGG IS ODD"}
    by_tag = {int(r["tag"][1:5] + r["tag"][6:10], 16): r for r in rows if r["tag"][1:5].isalnum()
              and "X" not in r["tag"] and "G" not in r["tag"]}
    for tag, entry in BASIC_PROFILE.items():
        assert by_tag[tag]["name"] == entry.name and by_tag[tag]["basicProfile"] == entry.action
    # Attributes the 2021 table lacked and the issue found kept verbatim are in it now.
    for keyword in ("InstanceCreationDate", "StationAETitle", "RetrieveAETitle", "AcquisitionUID",
                    "DateOfLastDetectorCalibration", "StudyArrivalDate", "StudyVerifiedDate"):
        assert pydicom.datadict.tag_for_keyword(keyword) in BASIC_PROFILE, keyword


def _temporal_values(ds: Dataset) -> dict[str, str]:
    found: dict[str, str] = {}

    def visit(d, elem):
        if elem.VR in TEMPORAL and elem.value not in (None, ""):
            for v in elem.value if elem.VM > 1 else [elem.value]:
                found[str(v)] = elem.keyword or str(elem.tag)

    ds.walk(visit)
    return found


@pytest.fixture(scope="module")
def nested(chest_png):
    """Every table attribute at the top level and again inside a kept sequence's item."""
    ds = make_secondary_capture_cxr(chest_png)
    fill_profile_attributes(ds)
    item = Dataset()
    values = fill_profile_attributes(item)
    ds.ViewCodeSequence = Sequence([item])  # not in the table: kept, so its items are de-identified
    return ds, values


@pytest.mark.parametrize("policy", ["shift", "remove"])
def test_no_table_attribute_survives_nested_in_a_sequence(nested, policy):
    ds, values = nested
    out = to_bytes(deidentify(ds, uid_root_secret=SECRET, date_policy=policy, pseudonym="CASE-1").dataset)
    item = pydicom.dcmread(io.BytesIO(out)).ViewCodeSequence[0]
    checked = 0
    for tag, value in values.items():
        if isinstance(value, str | bytes):
            needle = value.encode() if isinstance(value, str) else value
            assert needle not in out, f"nested {pydicom.datadict.keyword_for_tag(tag)} leaked {value!r}"
            checked += 1
        else:
            elem = item.get(tag)
            assert elem is None or elem.value in (None, "", 0, b"\x00\x00"), f"nested {tag:08X} kept"
    assert checked > 550


@pytest.mark.parametrize("policy", ["shift", "remove"])
def test_no_original_date_or_time_survives(nested, policy):
    ds, _ = nested
    original = _temporal_values(ds)
    assert len(original) > 150  # distinct values (the nested item repeats the top level's)
    clean = deidentify(ds, uid_root_secret=SECRET, date_policy=policy, pseudonym="CASE-1", time_shift=SHIFT)
    out = to_bytes(clean.dataset)
    survived = set(original) & set(_temporal_values(pydicom.dcmread(io.BytesIO(out))))
    assert not survived, {v: original[v] for v in survived}
    # Also with the keyed per-patient offset instead of the fixed one.
    keyed = deidentify(ds, uid_root_secret=SECRET, date_policy=policy, pseudonym="CASE-1").dataset
    assert not set(original) & set(_temporal_values(keyed))


def test_times_of_day_and_unlisted_dates_shift_too(chest_png):
    ds = make_secondary_capture_cxr(chest_png)
    ds.AcquisitionDateTime = "20230412093015.25+0100"
    ds.add_new(0x00181200, "DA", "20220101")  # Date of Last Calibration (table: X, option: C)
    ds.add_new(0x0040A121, "DA", "20230411")  # Date (0040,A121): D in the table, C with the option
    clean = deidentify(ds, uid_root_secret=SECRET, pseudonym="P", time_shift=SHIFT).dataset
    assert clean.StudyTime != ds.StudyTime and clean.ContentTime != ds.ContentTime
    moment = dt.datetime(2023, 4, 12, 9, 30, 15, 250000) + SHIFT.delta
    assert clean.AcquisitionDateTime == moment.strftime("%Y%m%d%H%M%S.") + "25+0100"
    assert clean[0x00181200].value == (dt.date(2022, 1, 1) + dt.timedelta(days=SHIFT.days)).strftime("%Y%m%d")
    assert clean.LongitudinalTemporalInformationModified == "MODIFIED"


def _study(chest_png, patient: str, date: str, time: str) -> Dataset:
    ds = make_secondary_capture_cxr(chest_png, patient_id=patient)
    ds.StudyDate = ds.ContentDate = date
    ds.StudyTime = ds.ContentTime = time
    return ds


def _moment(ds: Dataset) -> dt.datetime:
    return dt.datetime.strptime(ds.StudyDate + ds.StudyTime[:6], "%Y%m%d%H%M%S")


def test_two_patients_get_different_offsets(chest_png):
    a = deidentify(_study(chest_png, "PAT-A", "20230412", "093015"), uid_root_secret=SECRET, pseudonym="A").dataset
    b = deidentify(_study(chest_png, "PAT-B", "20230412", "093015"), uid_root_secret=SECRET, pseudonym="B").dataset
    assert _moment(a) != _moment(b)
    shifts = {patient_time_shift(SECRET, f"patient:\x00P{i}") for i in range(200)}
    assert len(shifts) == 200  # not one offset per trial
    assert all(-3650 <= s.days <= -365 and 1 <= s.seconds < 86400 for s in shifts)
    assert patient_time_shift("another-trial", "patient:\x00P1") != patient_time_shift(SECRET, "patient:\x00P1")


def test_one_patients_studies_keep_their_intervals(chest_png):
    first = _study(chest_png, "PAT-C", "20230412", "093015")
    second = _study(chest_png, "PAT-C", "20230519", "231059")
    a = deidentify(first, uid_root_secret=SECRET, pseudonym="C").dataset
    b = deidentify(second, uid_root_secret=SECRET, pseudonym="C").dataset
    assert _moment(b) - _moment(a) == _moment(second) - _moment(first)
    assert _moment(a) != _moment(first)


def test_clean_descriptors(chest_png):
    ds = make_secondary_capture_cxr(chest_png)
    ds.SeriesDescription = "CHEST PA erect"
    ds.StudyDescription = "XR CHEST 2 VIEWS Dr Smith 5551234"
    ds.ImageComments = "portable"
    clean = deidentify(ds, uid_root_secret=SECRET, pseudonym="P").dataset
    assert clean.SeriesDescription == "CHEST PA erect" and clean.ImageComments == "portable"
    assert "StudyDescription" not in clean  # basic action X: an unsafe word sends it
    off = deidentify(ds, uid_root_secret=SECRET, pseudonym="P",
                     options=DeidOptions(clean_descriptors=False)).dataset
    assert "SeriesDescription" not in off and "ImageComments" not in off
    assert "113105" not in [i.CodeValue for i in off.DeidentificationMethodCodeSequence]
    assert safe_descriptor("AP supine") and not safe_descriptor("Fictitia AP") and not safe_descriptor("12")


def test_clean_graphics_keeps_geometry_drops_text_and_overlays(chest_png):
    ds = make_secondary_capture_cxr(chest_png)
    text = Dataset()
    text.UnformattedTextValue = "Testperson Fictitia 1961"
    graphic = Dataset()
    graphic.GraphicAnnotationUnits = "PIXEL"
    graphic.GraphicType = "POLYLINE"
    graphic.NumberOfGraphicPoints = 2
    graphic.GraphicData = [1.0, 2.0, 3.0, 4.0]
    annotation = Dataset()
    annotation.GraphicLayer = "MARKS"
    annotation.TextObjectSequence = Sequence([text])
    annotation.GraphicObjectSequence = Sequence([graphic])
    annotation.PatientName = "Graphic^Phi"
    ds.GraphicAnnotationSequence = Sequence([annotation])
    ds.add_new(0x60000022, "LO", "Overlay by Dr Fictional")  # Overlay Description
    ds.add_new(0x60001500, "LO", "TESTPERSON")  # Overlay Label
    clean = deidentify(ds, uid_root_secret=SECRET, pseudonym="P").dataset
    item = clean.GraphicAnnotationSequence[0]
    assert "TextObjectSequence" not in item and "PatientName" not in item
    assert list(item.GraphicObjectSequence[0].GraphicData) == [1.0, 2.0, 3.0, 4.0]
    assert not any(int(tag) >> 16 == 0x6000 for tag in clean.keys())
    out = to_bytes(clean)
    for secret in (b"Testperson Fictitia", b"Dr Fictional", b"TESTPERSON", b"Graphic^Phi"):
        assert secret not in out
    off = deidentify(ds, uid_root_secret=SECRET, pseudonym="P", options=DeidOptions(clean_graphics=False)).dataset
    assert len(off.GraphicAnnotationSequence) == 0  # basic action D: emptied


def test_patient_identity_removed_only_when_fully_applied(chest_png):
    clean = deidentify(make_secondary_capture_cxr(chest_png), uid_root_secret=SECRET, pseudonym="P").dataset
    assert clean.PatientIdentityRemoved == "YES"
    burned = make_secondary_capture_cxr(chest_png, burned_in_annotation=True)
    assert deidentify(burned, uid_root_secret=SECRET, pseudonym="P").dataset.PatientIdentityRemoved == "NO"
    held = deidentify(make_secondary_capture_cxr(chest_png), uid_root_secret=SECRET, pseudonym="P",
                      options=DeidOptions(pixels_cleared=False)).dataset
    assert held.PatientIdentityRemoved == "NO"
