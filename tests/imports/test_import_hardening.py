"""An import that no file can break (issue 14, part 4): every file imported or refused with a code, batches
report every file, one SOP instance stored once, chest checks as trial settings with flags stored and shown."""
from __future__ import annotations

import logging
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from imaging import services as imports
from imaging.dicom import crafted
from imaging.dicom.synthetic import make_secondary_capture_cxr
from imaging.dicom.synthetic import to_bytes as sc_bytes
from imaging.models import Image
from tests.factories.trial import PASSWORD, make_trial
from trial import services as trial_services
from trial.models import Case, Trial

FIX = Path(settings.BASE_DIR) / "fixtures"
PNG = FIX / "cxr-png" / "00000001_000.png"

# Crafted file -> the refusal it must get (before: a crash, an accepted bomb or a wrong code; see the report).
ATTACKS = {
    "empty_pixel_data": "no_pixel_data",
    "big_endian_undefined_length": "unreadable",
    "unknown_vr_in_sequence": "invalid_vr",
    "nested_sequences": "too_deep",
    "deflate_bomb": "too_large",
    "rle_bomb": "too_large",
    "rle_huge_dims": "too_large",
    "jpeg_header_bomb": "too_large",
    "broken_voi_lut": "rendition_failed",
    "element_bomb": "too_large",
}


@pytest.fixture
def t(db):
    return make_trial(code="HARD", status=Trial.Status.SETUP, enrol_readers=False)


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def synthetic(seed: int = 0, **kw) -> bytes:
    ds = make_secondary_capture_cxr(PNG, **kw)
    ds.SeriesNumber = seed + 1
    return sc_bytes(ds)


def attack_bytes(name: str) -> bytes:
    if name == "deflate_bomb":
        return crafted.deflate_bomb(PNG, inflated_bytes=256 << 20)
    return crafted.IMAGE_ATTACKS[name](PNG)


def _import(t, name: str, data: bytes) -> imports.FileResult:
    return imports.import_file(t["coordinator"], t["trial"], t["centers"][0], name, data)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_crafted_file_is_refused_with_its_code_and_leaves_nothing(t, attack):
    r = _import(t, f"{attack}.dcm", attack_bytes(attack))
    assert (r.status, r.reason_code) == ("refused", ATTACKS[attack]), r.message
    assert not Image.objects.exists() and not Case.objects.exists() and media_files() == []


@pytest.mark.parametrize("name,builder", [("DICOMDIR", crafted.dicomdir), ("report.dcm", crafted.structured_report)])
def test_non_image_objects_are_not_an_image(t, name, builder):
    r = _import(t, name, builder())
    assert (r.status, r.reason_code) == ("refused", "not_an_image")


def test_unexpected_failure_is_logged_with_traceback(t, caplog):
    with caplog.at_level(logging.ERROR, logger="imaging.import"):
        r = _import(t, "voi.dcm", crafted.broken_voi_lut(PNG))
    assert r.reason_code == "rendition_failed" and "server log" in r.message
    record = next(rec for rec in caplog.records if rec.name == "imaging.import")
    assert record.exc_info is not None and record.exc_info[0] is IndexError
    assert "IndexError" not in r.message  # the client gets the code, the log gets the traceback


def test_api_batch_good_and_crashing_file_is_207_and_reports_both(t):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    good, bad = BytesIO(synthetic(seed=1)), BytesIO(crafted.empty_pixel_data(PNG))
    good.name, bad.name = "good.dcm", "crash.dcm"
    r = api.post(reverse("import-list", args=[t["trial"].code]), {"center": "c1", "files": [good, bad]},
                 format="multipart")
    assert r.status_code == 207
    results = {x["filename"]: x for x in r.json()["results"]}
    assert results["good.dcm"]["status"] == "imported"
    assert (results["crash.dcm"]["status"], results["crash.dcm"]["reason_code"]) == ("refused", "no_pixel_data")
    assert Image.objects.get().public_id == results["good.dcm"]["image_id"]


def test_api_batch_every_crashing_file_reported_in_order(t):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    files = []
    for name in ["nested_sequences", "unknown_vr_in_sequence", "big_endian_undefined_length"]:
        f = BytesIO(attack_bytes(name))
        f.name = f"{name}.dcm"
        files.append(f)
    good = BytesIO(synthetic(seed=2))
    good.name = "good.dcm"
    r = api.post(reverse("import-list", args=[t["trial"].code]), {"center": "c1", "files": [*files, good]},
                 format="multipart")
    assert r.status_code == 207
    assert [x["filename"] for x in r.json()["results"]] == [f.name for f in files] + ["good.dcm"]
    assert [x["status"] for x in r.json()["results"]] == ["refused"] * 3 + ["imported"]


def test_upload_page_reports_every_file_of_a_crashing_batch(client, t):
    client.login(username=t["coordinator"].username, password=PASSWORD)
    good, bad = BytesIO(synthetic(seed=3)), BytesIO(attack_bytes("nested_sequences"))
    good.name, bad.name = "good.dcm", "deep.dcm"
    r = client.post(reverse("imports:upload", args=[t["trial"].code]),
                    {"center": t["centers"][0].pk, "files": [good, bad]})
    html = r.content.decode()
    assert r.status_code == 200 and "good.dcm" in html and "deep.dcm" in html and "too_deep" in html
    assert "1 imported, 0 already present, 1 refused" in html and Image.objects.count() == 1


def test_same_sop_instance_with_other_bytes_is_a_duplicate(t):
    ds = make_secondary_capture_cxr(PNG)
    first = _import(t, "a.dcm", sc_bytes(ds))
    ds.SeriesDescription = "CHEST PA"  # other bytes, same SOP Instance UID
    again = _import(t, "b.dcm", sc_bytes(ds))
    assert first.status == "imported"
    assert (again.status, again.reason_code, again.image_id) == ("duplicate", "duplicate", first.image_id)
    assert Image.objects.count() == 1


def test_command_does_not_stop_on_a_crashing_file_and_counts_flags(t, tmp_path, capsys):
    d = tmp_path / "export"
    d.mkdir()
    (d / "a_deep.dcm").write_bytes(attack_bytes("nested_sequences"))
    (d / "b_good.dcm").write_bytes(synthetic(seed=5, view_position=""))
    (d / "c_bomb.dcm").write_bytes(attack_bytes("deflate_bomb"))
    call_command("import_cases", str(d), trial=t["trial"].code, center="c1", quiet_progress=True)
    out = capsys.readouterr().out
    assert "Imported 1, already present 0, refused 2 (of 3 files)." in out
    assert "Flags: view_empty 1" in out
    assert "a_deep.dcm: too_deep" in out and "c_bomb.dcm: too_large" in out
    assert "flagged b_good.dcm" in out and "view_empty" in out


# -- chest checks as trial settings -------------------------------------------------------------------------
def _with_settings(t, **import_settings) -> None:
    trial_services.update_trial_settings(t["coordinator"], t["trial"], import_settings=import_settings,
                                         reason="test settings")
    t["trial"].refresh_from_db()


def _ds(**attrs) -> bytes:
    ds = make_secondary_capture_cxr(PNG)
    for keyword, value in attrs.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return sc_bytes(ds)


def test_default_chest_checks(t):
    assert _import(t, "head.dcm", _ds(BodyPartExamined="HEAD")).reason_code == "body_part_not_allowed"
    assert _import(t, "obl.dcm", _ds(ViewPosition="OBL")).reason_code == "view_not_allowed"
    raw = _import(t, "raw.dcm", _ds(PresentationIntentType="FOR PROCESSING"))
    assert raw.reason_code == "for_processing"
    lateral = _import(t, "ll.dcm", _ds(ViewPosition="LL"))
    assert lateral.status == "imported" and "view_empty" not in lateral.flags
    empty = _import(t, "empty.dcm", _ds(BodyPartExamined=None, ViewPosition=""))
    assert empty.status == "imported" and {"body_part_empty", "view_empty"} <= set(empty.flags)
    odd = _import(t, "px.dcm", _ds(PixelSpacing=[5.0, 5.0], ImagerPixelSpacing=[5.0, 5.0]))
    none = _import(t, "nopx.dcm", _ds(PixelSpacing=None, ImagerPixelSpacing=None))
    assert "pixel_spacing_implausible" in odd.flags and "pixel_spacing_missing" in none.flags
    stored = {i.public_id: i.flags for i in Image.objects.all()}
    assert stored[empty.image_id] == empty.flags and stored[odd.image_id] == odd.flags


def test_chest_checks_follow_the_trial_settings(t):
    _with_settings(t, allow_empty_body_part=False, allowed_views=["PA"], presentation_only=False)
    assert _import(t, "e.dcm", _ds(BodyPartExamined=None)).reason_code == "body_part_not_allowed"
    assert _import(t, "ap.dcm", _ds(ViewPosition="AP")).reason_code == "view_not_allowed"
    assert _import(t, "raw.dcm", _ds(PresentationIntentType="FOR PROCESSING")).status == "imported"


def test_invalid_import_settings_refused(t):
    from core.errors import InvalidInput

    for bad in ({"allowed_views": ["SIDEWAYS"]}, {"pixel_spacing_mm": [1, 0.1]}, {"nope": True},
                {"allow_empty_view": "yes"}):
        with pytest.raises(InvalidInput):
            trial_services.update_trial_settings(t["coordinator"], t["trial"], import_settings=bad, reason="test")


def test_flags_shown_on_the_trial_page(client, t):
    r = _import(t, "empty.dcm", _ds(ViewPosition=""))
    client.login(username=t["coordinator"].username, password=PASSWORD)
    html = client.get(reverse("trial:detail", args=[t["trial"].code])).content.decode()
    assert r.case_code in html and "view_empty" in html


def test_stored_file_records_the_options(t):
    r = _import(t, "a.dcm", synthetic(seed=9))
    image = Image.objects.get(public_id=r.image_id)
    stored = pydicom.dcmread(Path(settings.MEDIA_ROOT) / image.dicom_file)
    codes = [item.CodeValue for item in stored.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113105", "113103"] and stored.PatientIdentityRemoved == "YES"


def test_api_trial_takes_and_shows_import_settings(t):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    r = api.post(reverse("trial-list"), {"code": "SETS", "title": "Settings", "import_settings": {
        "allowed_views": ["PA"], "review_when_burned_in_absent": True}}, format="json")
    assert r.status_code == 201, r.content
    shown = r.json()["import_settings"]
    assert shown["allowed_views"] == ["PA"] and shown["review_when_burned_in_absent"] is True
    assert shown["allowed_body_parts"] == ["CHEST"]  # defaults filled in, so the stored settings are explicit
    bad = api.post(reverse("trial-list"),
                   {"code": "SETS2", "title": "Bad", "import_settings": {"allowed_views": "PA"}},
                   format="json")
    assert bad.status_code == 400
