"""deidentify(): the whole PS3.15 Table E.1-1 applied, attribute by attribute, on the written file bytes."""
from __future__ import annotations

import datetime as dt
import io

import pydicom
import pytest

from imaging.dicom import TimeShift, deidentify, pseudonymous_uid, to_bytes, validate
from imaging.dicom.profile import BASIC_PROFILE, resolve_action
from imaging.dicom.synthetic import (
    FAKE_ACCESSION,
    FAKE_BIRTH_DATE,
    FAKE_PATIENT_ID,
    FAKE_STUDY_DATE,
    PRIVATE_SECRET,
    fill_profile_attributes,
    make_secondary_capture_cxr,
)
from imaging.dicom.synthetic import to_bytes as synthetic_bytes

SECRET = "trial-secret-0123456789abcdef"
SHIFT = TimeShift(days=-123, seconds=2 * 3600 + 17)


@pytest.fixture(scope="module")
def rich(chest_png):
    ds = make_secondary_capture_cxr(chest_png, photometric="MONOCHROME1", bits_stored=12, window=(2000, 3000),
                                    rescale=(1.0, 0.0))
    values = fill_profile_attributes(ds)
    data = synthetic_bytes(ds)
    return validate(data, "rich.dcm"), values, data


def _needle(value) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return None  # binary numbers: checked by presence instead


def test_table_is_complete_enough():
    assert len(BASIC_PROFILE) >= 450
    assert {resolve_action(e.action) for e in BASIC_PROFILE.values()} <= {"D", "Z", "X", "U"}
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "SOPInstanceUID",
                    "AccessionNumber", "InstitutionName", "OperatorsName", "StudyDate", "OtherPatientIDs"):
        assert pydicom.datadict.tag_for_keyword(keyword) in BASIC_PROFILE


@pytest.mark.parametrize("policy", ["remove", "shift"])
@pytest.mark.requirement("DEI-1")
def test_every_profile_attribute_removed_from_file_bytes(rich, policy):
    inst, values, original = rich
    result = deidentify(inst.dataset, uid_root_secret=SECRET, date_policy=policy, time_shift=SHIFT,
                        pseudonym="CASE-0007")
    out = to_bytes(result.dataset)
    clean = pydicom.dcmread(io.BytesIO(out))
    checked = 0
    for tag, value in values.items():
        needle = _needle(value)
        if needle is None:
            elem = clean.get(tag)
            assert elem is None or elem.value in (None, "", 0, b"\x00\x00"), f"{tag:08X} kept {elem.value!r}"
            continue
        assert needle in original, f"{tag:08X} test value missing from the input"
        assert needle not in out, f"{tag:08X} ({pydicom.datadict.keyword_for_tag(tag)}) leaked {value!r}"
        checked += 1
    assert checked > 400
    for text in (PRIVATE_SECRET, FAKE_ACCESSION, "Nested^Phi^Name", "Testperson"):
        assert text.encode() not in out
    assert FAKE_PATIENT_ID.encode() not in out


@pytest.mark.requirement("DEI-1")
def test_no_private_tags_survive(rich):
    inst, _, original = rich
    assert PRIVATE_SECRET.encode() in original
    clean = deidentify(inst.dataset, uid_root_secret=SECRET, pseudonym="P").dataset
    found = []
    clean.walk(lambda ds, elem: found.append(elem.tag) if elem.tag.is_private else None)
    assert found == []
    assert not any(int(tag) >> 16 in (0x5000, 0x6000) for tag in clean.keys())


def test_identity_attributes_set(rich):
    inst, _, _ = rich
    clean = deidentify(inst.dataset, uid_root_secret=SECRET, date_policy="shift", time_shift=SHIFT,
                       pseudonym="CASE-0007").dataset
    assert clean.PatientID == "CASE-0007" and str(clean.PatientName) == "CASE-0007"
    assert clean.PatientIdentityRemoved == "YES"
    assert clean.DeidentificationMethod
    codes = [item.CodeValue for item in clean.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113105", "113103"]  # basic, modified dates, clean descr., graphics
    assert clean.LongitudinalTemporalInformationModified == "MODIFIED"
    assert clean.PatientBirthDate == ""  # never shifted, always emptied


def test_dates_shifted_or_removed(chest_png):
    ds = make_secondary_capture_cxr(chest_png)
    shifted = deidentify(ds, uid_root_secret=SECRET, date_policy="shift", time_shift=SHIFT,
                         pseudonym="P").dataset
    study = dt.datetime.strptime(FAKE_STUDY_DATE + ds.StudyTime, "%Y%m%d%H%M%S") + SHIFT.delta
    assert (shifted.StudyDate, shifted.StudyTime) == (study.strftime("%Y%m%d"), study.strftime("%H%M%S"))
    content = dt.datetime.strptime(FAKE_STUDY_DATE + ds.ContentTime, "%Y%m%d%H%M%S") + SHIFT.delta
    assert (shifted.ContentDate, shifted.ContentTime) == (content.strftime("%Y%m%d"), content.strftime("%H%M%S"))
    removed = deidentify(ds, uid_root_secret=SECRET, date_policy="remove", time_shift=SHIFT,
                         pseudonym="P").dataset
    assert removed.StudyDate == "" and removed.ContentDate == "" and removed.StudyTime == ""
    assert removed.LongitudinalTemporalInformationModified == "REMOVED"
    assert FAKE_STUDY_DATE.encode() not in to_bytes(removed)
    assert FAKE_BIRTH_DATE.encode() not in to_bytes(shifted)


def test_uids_mapped_consistently(chest_png):
    a = make_secondary_capture_cxr(chest_png)
    b = make_secondary_capture_cxr(chest_png)
    b.StudyInstanceUID = a.StudyInstanceUID  # same study, another image
    ra = deidentify(a, uid_root_secret=SECRET, pseudonym="P1")
    rb = deidentify(b, uid_root_secret=SECRET, pseudonym="P1")
    again = deidentify(a, uid_root_secret=SECRET, pseudonym="P1")
    other_trial = deidentify(a, uid_root_secret="another-trial", pseudonym="P1")
    assert ra.dataset.StudyInstanceUID == rb.dataset.StudyInstanceUID
    assert ra.dataset.SOPInstanceUID != rb.dataset.SOPInstanceUID
    assert ra.dataset.SOPInstanceUID == again.dataset.SOPInstanceUID
    assert ra.dataset.StudyInstanceUID != other_trial.dataset.StudyInstanceUID
    assert ra.dataset.StudyInstanceUID == pseudonymous_uid(a.StudyInstanceUID, SECRET)
    new = ra.dataset.SOPInstanceUID
    assert new.startswith("2.25.") and len(new) <= 64 and pydicom.uid.UID(new).is_valid
    assert ra.dataset.file_meta.MediaStorageSOPInstanceUID == new
    assert a.StudyInstanceUID.encode() not in to_bytes(ra.dataset)
    keys = {k.kind: k for k in ra.key_entries}
    assert keys["patient_id"].original == FAKE_PATIENT_ID and keys["patient_id"].pseudonym == "P1"
    assert keys["study_uid"].original == a.StudyInstanceUID
    assert keys["study_uid"].pseudonym == ra.dataset.StudyInstanceUID
    assert keys["sop_uid"].pseudonym == new
    assert a.PatientID == FAKE_PATIENT_ID  # input untouched


def test_reading_attributes_kept_and_pixels_unchanged(rich):
    inst, _, _ = rich
    clean = deidentify(inst.dataset, uid_root_secret=SECRET, pseudonym="P").dataset
    for keyword in ("PhotometricInterpretation", "PixelSpacing", "ImagerPixelSpacing", "ViewPosition",
                    "ImageLaterality", "WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept",
                    "BitsAllocated", "BitsStored", "Rows", "Columns", "Modality", "BodyPartExamined"):
        assert clean.get(keyword) == inst.dataset.get(keyword), keyword
    reread = validate(to_bytes(clean), "clean.dcm")
    assert (reread.pixels == inst.pixels).all()


def test_burned_in_flag(chest_png):
    flagged = deidentify(make_secondary_capture_cxr(chest_png, burned_in_annotation=True), uid_root_secret=SECRET,
                         pseudonym="P")
    assert flagged.burned_in_annotation is True
    clean, keys, burned = deidentify(make_secondary_capture_cxr(chest_png), uid_root_secret=SECRET,
                                     pseudonym="P")
    assert burned is False


def test_patient_characteristics_option(chest_png):
    ds = make_secondary_capture_cxr(chest_png)
    kept = deidentify(ds, uid_root_secret=SECRET, pseudonym="P",
                      keep_patient_characteristics=True).dataset
    assert kept.PatientSex == "F" and kept.PatientAge == "061Y"
    default = deidentify(ds, uid_root_secret=SECRET, pseudonym="P").dataset
    assert default.PatientSex == "" and "PatientAge" not in default


def test_real_file_deidentified_round_trip(dicom_dir):
    data = (dicom_dir / "CR-MONO1-10-chest_nometa.dcm").read_bytes()
    inst = validate(data, "nometa.dcm")
    result = deidentify(inst.dataset, uid_root_secret=SECRET, pseudonym="CASE-1")
    out = to_bytes(result.dataset)
    assert out[128:132] == b"DICM"
    assert str(inst.dataset.SOPInstanceUID).encode() not in out
    assert (validate(out, "x.dcm").pixels == inst.pixels).all()


def test_arguments_checked(chest_png):
    ds = make_secondary_capture_cxr(chest_png)
    with pytest.raises(ValueError):
        deidentify(ds, uid_root_secret="", pseudonym="P")
    with pytest.raises(ValueError):
        deidentify(ds, uid_root_secret=SECRET, date_policy="keep", pseudonym="P")
