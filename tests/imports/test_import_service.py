"""Case import through the services, the page, the API and the command: real DICOM files through pydicom."""
from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from PIL import Image as PILImage
from rest_framework.test import APIClient

from imaging import services as imports
from imaging.dicom.synthetic import make_secondary_capture_cxr
from imaging.dicom.synthetic import to_bytes as sc_bytes
from imaging.models import IdentityKey, Image
from tests.factories.trial import PASSWORD, make_trial
from trial.models import AuditEntry, Case, Trial

FIX = Path(settings.BASE_DIR) / "fixtures"
PNG = FIX / "cxr-png" / "00000001_000.png"


@pytest.fixture
def t(db):
    return make_trial(code="IMP", status=Trial.Status.SETUP, enrol_readers=False)


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def synthetic(study: str | None = None, seed: int = 0, **kw) -> bytes:
    """A real DICOM made with pydicom; a new study (and new bytes) unless `study` is given."""
    ds = make_secondary_capture_cxr(PNG, **kw)
    if study:
        ds.StudyInstanceUID = study
    ds.SeriesNumber = seed + 1
    return sc_bytes(ds)


def test_real_chest_radiographs_import_with_renditions(t):
    coord, trial, center = t["coordinator"], t["trial"], t["centers"][0]
    for name in ["RG1_CR_chest_MONO1_J2K_lossless.dcm", "SIIM_CR_chest_MONO2_jpeg_baseline.dcm",
                 "NIH_DX_chest_MONO2_implicitLE.dcm", "CR-MONO1-10-chest_nometa.dcm"]:
        r = imports.import_file(coord, trial, center, name, (FIX / "dicom" / name).read_bytes())
        assert r.status == "imported", (name, r)
    assert Case.objects.filter(trial=trial).count() == 4
    for img in Image.objects.all():
        root = Path(settings.MEDIA_ROOT)
        stored = pydicom.dcmread(root / img.dicom_file)
        assert stored.PatientIdentityRemoved == "YES"
        assert stored.PatientID == img.case.code
        with PILImage.open(root / img.display_file) as disp:
            assert disp.mode == "L" and max(disp.size) <= 2048
        assert img.full_range_file == img.dicom_file and img.display["full_range"]["encoding"] == "dicom"
        assert {"window_center", "window_width"} <= set(img.display)
    assert AuditEntry.objects.filter(trial=trial, action="import", object_type="imaging.Image").count() == 4


def test_same_file_twice_gives_one_image(t):
    data = (FIX / "dicom" / "SIIM_CR_chest_MONO2_jpeg_baseline.dcm").read_bytes()
    a = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "a.dcm", data)
    n_files = len(media_files())
    b = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "again.dcm", data)
    assert (a.status, b.status) == ("imported", "duplicate") and a.image_id == b.image_id
    assert Image.objects.count() == 1 and len(media_files()) == n_files


def test_instances_group_into_cases_by_study(t):
    study = pydicom.uid.generate_uid()
    files = [synthetic(study=study, seed=i) for i in range(2)] + [synthetic(seed=9)]
    results = imports.import_files(t["coordinator"], t["trial"], t["centers"][0],
                                   [(f"f{i}.dcm", d) for i, d in enumerate(files)])
    assert [r.status for r in results] == ["imported"] * 3
    assert results[0].case_code == results[1].case_code != results[2].case_code
    assert Case.objects.count() == 2


@pytest.mark.parametrize("name,reason", [
    ("bad/MR_truncated.dcm", "truncated"),
    ("bad/fodicom_GH178_CT_no_pixeldata.dcm", "no_pixel_data"),
    ("bad/SYNTHETIC_CR_huge_dims_65535x65535.dcm", "too_large"),
    ("bad/meta_missing_tsyntax.dcm", "missing_transfer_syntax"),
    ("bad/emri_small_MR_multiframe10.dcm", "modality_not_allowed"),
    ("pydicom_CR_cspine_MONO1_16x16.dcm", "too_small"),
])
def test_refused_files_write_no_row_and_no_file(t, name, reason):
    r = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], name, (FIX / "dicom" / name).read_bytes())
    assert r.status == "refused" and r.reason_code == reason and r.message and r.filename == name
    assert not Image.objects.exists() and not Case.objects.exists() and media_files() == []


def test_ct_modality_accepted_only_with_trial_setting(t):
    data = synthetic(modality="CT")
    assert imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "ct.dcm", data).reason_code == \
        "modality_not_allowed"
    t["trial"].allowed_modalities = ["CT"]
    t["trial"].save()
    assert imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "ct.dcm", data).status == "imported"


def test_identity_key_kept_only_when_chosen(t):
    imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "a.dcm", synthetic(seed=1))
    assert not IdentityKey.objects.exists()
    t["trial"].keep_identity_key = True
    t["trial"].save()
    imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "b.dcm", synthetic(seed=2))
    assert IdentityKey.objects.filter(trial=t["trial"], kind="patient_id").exists()


def test_burned_in_annotation_is_flagged(t):
    # Issue 14: the flag is stored on the image and holds the case for review (tests/imports/test_review.py).
    r = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "b.dcm",
                            synthetic(burned_in_annotation=True))
    assert r.status == "imported" and "burned_in_annotation" in r.flags
    image = Image.objects.get()
    assert image.burned_in_annotation and "burned_in_annotation" in image.flags
    assert image.case.needs_review and image.case.review_reason == "burned_in_annotation"


def test_disk_full_is_a_clear_error_and_leaves_no_half_file(t, settings, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True)
    assert mounted.returncode == 0, f"could not mount a small filesystem: {mounted.stderr!r}"
    try:
        settings.MEDIA_ROOT = small
        data = (FIX / "dicom" / "NIH_DX_chest_MONO2_implicitLE.dcm").read_bytes()
        r = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "big.dcm", data)
        assert r.status == "refused" and r.reason_code == "storage_error"
        assert "No space left" in r.message
        assert [p for p in small.rglob("*") if p.is_file()] == []
        assert not Image.objects.exists() and not Case.objects.exists()
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_reference_csv_all_or_nothing(t):
    imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "a.dcm", synthetic(seed=1))
    code = Case.objects.get().code
    bad = f"case,pleural_effusion,pneumothorax,report\n{code},1,0,Effusion.\nNOPE,1,0,\n{code},2,0,\n"
    res = imports.import_reference_csv(t["coordinator"], t["trial"], bad)
    assert res.updated == 0 and [e["row"] for e in res.errors] == [3, 4]
    assert Case.objects.get().reference_findings == {}
    res = imports.import_reference_csv(
        t["coordinator"], t["trial"], f"case,pleural_effusion,report\n{code},1,Effusion.\n"
    )
    assert res.updated == 1 and Case.objects.get().reference_findings == {"pleural_effusion": 1}


def test_upload_page_many_files_with_per_file_results(client, t):
    client.login(username=t["coordinator"].username, password=PASSWORD)
    good = BytesIO(synthetic(seed=3))
    good.name = "good.dcm"
    bad = BytesIO(b"not a dicom file at all" * 10)
    bad.name = "junk.dcm"
    r = client.post(reverse("imports:upload", args=[t["trial"].code]),
                    {"center": t["centers"][0].pk, "files": [good, bad]})
    assert r.status_code == 200
    html = r.content.decode()
    assert "good.dcm" in html and "junk.dcm" in html and "not_dicom" in html
    assert "1 imported, 0 already present, 1 refused" in html
    assert Image.objects.count() == 1


def test_reader_cannot_upload(client, t):
    client.login(username=t["readers"][0].user.username, password=PASSWORD)
    f = BytesIO(synthetic(seed=3))
    f.name = "x.dcm"
    assert client.post(reverse("imports:upload", args=[t["trial"].code]),
                       {"center": t["centers"][0].pk, "files": [f]}).status_code == 403
    assert not Image.objects.exists()


def test_api_import_reasons(t):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    url = reverse("import-list", args=[t["trial"].code])
    junk = BytesIO(b"\x00" * 400)
    junk.name = "junk.dcm"
    r = api.post(url, {"center": "c1", "files": [junk]}, format="multipart")
    assert r.status_code == 400 and r.json()["results"][0]["reason_code"] == "not_dicom"
    good = BytesIO(synthetic(seed=4))
    good.name = "good.dcm"
    r = api.post(url, {"center": "c1", "files": [good]}, format="multipart")
    assert r.status_code == 201 and r.json()["results"][0]["status"] == "imported"
    r = api.post(url, {"center": "nowhere", "files": [good]}, format="multipart")
    assert r.status_code == 400 and "center" in r.json()


def test_command_imports_a_folder_with_summary(t, tmp_path, capsys):
    d = tmp_path / "export"
    d.mkdir()
    (d / "one.dcm").write_bytes(synthetic(seed=5))
    (d / "two.dcm").write_bytes((FIX / "dicom" / "bad" / "badVR.dcm").read_bytes())
    call_command("import_cases", str(d), trial=t["trial"].code, center="c2", quiet_progress=True)
    out = capsys.readouterr().out
    assert "Imported 1, already present 0, refused 1" in out and "two.dcm: invalid_vr" in out
    call_command("import_cases", str(d), trial=t["trial"].code, center="c2", quiet_progress=True)
    assert "Imported 0, already present 1, refused 1" in capsys.readouterr().out


def test_monochrome1_rendition_bright_bone(t):
    r = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "m1.dcm",
                            (FIX / "dicom" / "RG1_CR_chest_MONO1_J2K_lossless.dcm").read_bytes())
    img = Image.objects.get(public_id=r.image_id)
    assert img.photometric_interpretation == "MONOCHROME1" and img.display.get("invert") is True
