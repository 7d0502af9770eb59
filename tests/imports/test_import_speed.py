"""Issue 19.1: what the faster import stores and serves is what the float pipeline made, and `--jobs N` imports
the same as one process. Real DICOM files through pydicom, real PostgreSQL, real worker processes."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage
from pydicom.uid import generate_uid

from imaging import services as imports
from imaging.dicom.synthetic import make_secondary_capture_cxr
from imaging.dicom.synthetic import to_bytes as sc_bytes
from imaging.models import Image
from tests.factories.trial import make_trial
from tests.imaging.reference_rendition import float_rendition
from tests.processes import app_database_url
from trial.models import Case, Trial

FIX = Path(settings.BASE_DIR) / "fixtures"
RG1 = FIX / "dicom" / "RG1_CR_chest_MONO1_J2K_lossless.dcm"


def _uncompressed_copy(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    ds.decompress()
    ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return sc_bytes(ds)


@pytest.mark.parametrize("compressed", [True, False], ids=["j2k", "uncompressed"])
def test_served_images_equal_the_float_pipeline(db, compressed):
    t = make_trial(code="SPD", status=Trial.Status.SETUP, enrol_readers=False)
    data = RG1.read_bytes() if compressed else _uncompressed_copy(RG1)
    r = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "rg1.dcm", data)
    assert r.status == "imported", r
    image = Image.objects.get(public_id=r.image_id)
    assert image.display["version"] == 2 and image.display["full_range"]["encoding"] == "dicom"
    assert image.full_range_file == image.dicom_file  # no second image stored
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.full.png"))

    source = pydicom.dcmread(io.BytesIO(data))
    ref8, ref16, ref = float_rendition(source, pixels=source.pixel_array)
    client = Client()
    client.force_login(t["coordinator"])
    meta = client.get(reverse("imaging:image-meta", args=[image.public_id])).json()
    assert (meta["width"], meta["height"]) == (1841, 1955)
    display = client.get(meta["display_url"])
    with PILImage.open(io.BytesIO(b"".join(display.streaming_content) if display.streaming else display.content)) as im:
        assert np.array_equal(np.asarray(im), ref8)  # the display image, exactly
    for _ in range(2):  # made from the stored DICOM, then from the cache
        # raw uint16 (the viewer asks for delta planes: tests/imports/test_viewer_metadata.py)
        full = client.get(meta["full_url"].split("?")[0])
        assert full.status_code == 200
        body = b"".join(full.streaming_content) if full.streaming else full.content
        arr = np.frombuffer(body, dtype="<u2").reshape(meta["height"], meta["width"])
        assert np.array_equal(arr, ref16) and arr.max() > 255  # the full range, losslessly
    fr = meta["display"]["full_range"]
    assert (fr["slope"], fr["intercept"]) == (ref["slope"], ref["min"])
    assert (Path(settings.MEDIA_ROOT) / "cache" / "full-range" / f"{image.public_id}.u16").is_file()


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    png = FIX / "cxr-png" / "00000001_000.png"
    shared_study = generate_uid()
    for i in range(6):
        ds = make_secondary_capture_cxr(png, bits_stored=12, window=(2000, 4000))
        ds.SeriesNumber = i + 1
        if i < 2:
            ds.StudyInstanceUID = shared_study  # two instances of one study: one case
        (d / f"{i}.dcm").write_bytes(sc_bytes(ds))
    (d / "bad.dcm").write_bytes((FIX / "dicom" / "bad" / "badVR.dcm").read_bytes())
    (d / "same-again.dcm").write_bytes((d / "3.dcm").read_bytes())
    return d


def _import_cases(folder: Path, jobs: int) -> str:
    """`manage.py import_cases --jobs N` as a coordinator runs it: its own process. Forking the worker pool from
    inside the test process deadlocked once other tests had left threads running there (a fork copies locks held
    by other threads); a command process has none."""
    env = dict(os.environ, DATABASE_URL=app_database_url(), MEDIA_ROOT=str(settings.MEDIA_ROOT))
    out = subprocess.run([sys.executable, "manage.py", "import_cases", str(folder), "--trial", "JOBS", "--center",
                          "c1", "--jobs", str(jobs), "--quiet-progress"], cwd=settings.BASE_DIR, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_command_with_jobs_imports_what_one_process_does(transactional_db, tmp_path):
    t = make_trial(code="JOBS", status=Trial.Status.SETUP, enrol_readers=False)
    d = _folder(tmp_path)
    out = _import_cases(d, 3)
    # the same bytes twice in one parallel batch: one imported, the other a duplicate, whichever worker was first
    assert "Imported 6, already present 1, refused 1 (of 8 files)" in out, out
    assert "bad.dcm: invalid_vr" in out
    assert Image.objects.filter(case__trial=t["trial"]).count() == 6
    assert Case.objects.filter(trial=t["trial"]).count() == 5
    assert "Imported 0, already present 7, refused 1" in _import_cases(d, 2)


def test_jobs_must_be_positive(db, tmp_path):
    from django.core.management.base import CommandError

    make_trial(code="JOB0", status=Trial.Status.SETUP, enrol_readers=False)
    with pytest.raises(CommandError, match="--jobs"):
        call_command("import_cases", str(_folder(tmp_path)), trial="JOB0", center="c1", jobs=0)
