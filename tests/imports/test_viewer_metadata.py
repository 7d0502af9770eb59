"""What the viewer and the read page need from an import (issue 17, reader part): what the pixel spacing means
(calibrated, at the detector, or not stated), laterality, and age and sex only when de-identification kept them
(the trial's Retain Patient Characteristics option); the clinical indication from the reference CSV; the full range
sent as gzip-encoded delta byte planes that decode to exactly the raw array; the next read's image to prefetch."""
from __future__ import annotations

import gzip
import importlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imaging import services as imports
from imaging.dicom.summary import instance_summary, spacing_kind
from imaging.dicom.synthetic import make_secondary_capture_cxr
from imaging.dicom.synthetic import to_bytes as sc_bytes
from imaging.models import Image
from imaging.range_cache import delta_planes
from reading import selectors as reading_selectors
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial
from trial.models import Case, Trial

FIX = Path(settings.BASE_DIR) / "fixtures"
PNG = FIX / "cxr-png" / "00000001_000.png"

pytestmark = pytest.mark.django_db


@pytest.fixture
def t(db):
    return make_trial(code="VMD", status=Trial.Status.SETUP, enrol_readers=False)


def _with_patient(seed: int) -> bytes:
    ds = make_secondary_capture_cxr(PNG)
    ds.PatientAge, ds.PatientSex, ds.SeriesNumber = "064Y", "F", seed + 1
    if "PixelSpacing" in ds:
        del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.15, 0.15]
    ds.ImageLaterality = "L"
    return sc_bytes(ds)


def test_spacing_kind_follows_the_standard():
    ds = pydicom.Dataset()
    assert spacing_kind(ds) == ""
    if "PixelSpacing" in ds:
        del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.15, 0.15]
    assert spacing_kind(ds) == "detector"
    ds.PixelSpacing = [0.15, 0.15]  # repeats the detector spacing: not corrected
    assert spacing_kind(ds) == "detector"
    ds.PixelSpacing = [0.136, 0.136]  # corrected for magnification
    assert spacing_kind(ds) == "calibrated"
    del ds.ImagerPixelSpacing
    assert spacing_kind(ds) == "unstated"
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    assert spacing_kind(ds) == "calibrated"


def test_real_files_keep_spacing_kind_and_laterality():
    hd = instance_summary(pydicom.dcmread(FIX / "dicom" / "highdicom_DX_thorax_MONO1_small.dcm"))
    assert hd.pixel_spacing_kind == "detector" and hd.laterality == "L"  # Pixel Spacing repeats Imager's
    siim = instance_summary(pydicom.dcmread(FIX / "dicom" / "SIIM_CR_chest_MONO2_jpeg_baseline.dcm"))
    assert siim.pixel_spacing == [0.168, 0.168] and siim.pixel_spacing_kind == "unstated"


def test_age_and_sex_only_under_the_retain_patient_characteristics_option(t):
    coord, trial, center = t["coordinator"], t["trial"], t["centers"][0]
    assert imports.import_file(coord, trial, center, "a.dcm", _with_patient(1)).status == "imported"
    image = Image.objects.get()
    assert (image.patient_age, image.patient_sex) == ("", "")  # the basic profile removes them
    assert image.pixel_spacing_kind == "detector" and image.laterality == "L"
    stored = pydicom.dcmread(Path(settings.MEDIA_ROOT) / image.dicom_file)
    assert not str(stored.get("PatientAge", "") or "")

    trial.import_settings = {"keep_patient_characteristics": True}
    trial.save(update_fields=["import_settings"])
    assert imports.import_file(coord, trial, center, "b.dcm", _with_patient(2)).status == "imported"
    kept = Image.objects.exclude(pk=image.pk).get()
    assert (kept.patient_age, kept.patient_sex) == ("064Y", "F")
    stored = pydicom.dcmread(Path(settings.MEDIA_ROOT) / kept.dicom_file)
    assert stored.PatientAge == "064Y" and stored.PatientID == kept.case.code  # identifiers still replaced
    assert "113108" in [c.CodeValue for c in stored.DeidentificationMethodCodeSequence]
    assert reading_selectors.clinical_context(kept.case) == {"age": "64 years", "sex": "Female"}
    assert reading_selectors.clinical_context(image.case) == {}


def test_reference_csv_carries_the_clinical_indication(t):
    imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "a.dcm", _with_patient(1))
    code = Case.objects.get().code
    res = imports.import_reference_csv(t["coordinator"], t["trial"],
                                       f'case,pleural_effusion,indication\n{code},1,"  Cough,   fever "\n')
    assert res.updated == 1 and Case.objects.get().clinical_indication == "Cough, fever"
    assert reading_selectors.clinical_context(Case.objects.get()) == {"indication": "Cough, fever"}
    res = imports.import_reference_csv(t["coordinator"], t["trial"], f"case,indication\n{code},{'x' * 301}\n")
    assert res.updated == 0 and res.errors[0]["row"] == 2
    assert Case.objects.get().clinical_indication == "Cough, fever"


def test_full_range_is_sent_as_compressed_delta_planes_that_decode_exactly(t, capsys):
    coord, trial, center = t["coordinator"], t["trial"], t["centers"][0]
    name = "RG1_CR_chest_MONO1_J2K_lossless.dcm"  # a real chest CR, 1955 x 1841, 15 bits
    assert imports.import_file(coord, trial, center, name, (FIX / "dicom" / name).read_bytes()).status == "imported"
    image = Image.objects.get()
    c = Client()
    c.force_login(coord)
    meta = c.get(reverse("imaging:image-meta", args=[image.public_id])).json()
    assert meta["full_url"].endswith("?encoding=delta-planes")
    assert (meta["rows"], meta["columns"], meta["pixel_spacing_kind"]) == (image.rows, image.columns, "")

    raw = c.get(meta["full_url"].split("?")[0])
    raw_bytes = b"".join(raw.streaming_content)
    w, h = int(raw["X-Image-Width"]), int(raw["X-Image-Height"])
    assert len(raw_bytes) == w * h * 2 and raw["X-Image-Encoding"] == "u16le"
    arr = np.frombuffer(raw_bytes, dtype="<u2").reshape(h, w)

    gz = c.get(meta["full_url"], HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert gz["Content-Encoding"] == "gzip" and gz["X-Image-Encoding"] == "delta-planes"
    assert "Accept-Encoding" in gz["Vary"]
    sent = b"".join(gz.streaming_content)
    planes = gzip.decompress(sent)
    plain = c.get(meta["full_url"])  # a client that does not take gzip gets the same planes, uncompressed
    assert "Content-Encoding" not in plain and plain.content == planes

    # decode as viewer.js does: low plane + high plane, then a running sum along each row, modulo 65536
    d = (np.frombuffer(planes[:w * h], np.uint8).astype(np.uint16)
         | (np.frombuffer(planes[w * h:], np.uint8).astype(np.uint16) << 8)).reshape(h, w)
    decoded = np.cumsum(d, axis=1, dtype=np.uint64).astype(np.uint64) % 65536
    assert np.array_equal(decoded.astype(np.uint16), arr) and arr.max() > 4095
    assert delta_planes(arr) == planes
    assert len(sent) < 0.7 * len(raw_bytes)
    with capsys.disabled():
        print(f"\nfull range {w}x{h}: raw {len(raw_bytes)} bytes, gzip(raw) {len(gzip.compress(raw_bytes, 6))}, "
              f"delta planes + gzip {len(sent)}")


def test_the_next_reads_image_is_prefetched_in_one_query(db):
    t = make_trial(code="VMP", centers=1)
    cases = add_cases(t, 3)
    with_images_and_drafts(t, cases, size=64, drafts=False)
    m = reader_in(t, "unassisted")
    first, second, third = list(reads_of(m))
    assert first.case.trial == t["trial"]  # the read page has the read's case and trial already
    with CaptureQueriesContext(connection) as q:
        url = reading_selectors.next_display_url(first)
    assert len(q.captured_queries) == 1
    assert url == reverse("imaging:image-display", args=[second.case.images.get().public_id])
    second.status = "done"
    second.save(update_fields=["status"])
    assert reading_selectors.next_display_url(first) == reverse(
        "imaging:image-display", args=[third.case.images.get().public_id])
    third.status = "done"
    third.save(update_fields=["status"])
    assert reading_selectors.next_display_url(first) is None


def test_images_imported_before_get_their_spacing_kind_from_the_stored_file(t):
    coord, trial, center = t["coordinator"], t["trial"], t["centers"][0]
    kept = imports.import_file(coord, trial, center, "a.dcm", _with_patient(1))
    gone = imports.import_file(coord, trial, center, "b.dcm", _with_patient(2))
    assert kept.status == gone.status == "imported"
    Image.objects.update(pixel_spacing_kind="", laterality="")  # as migration 0003 left older images
    Image.objects.filter(public_id=gone.image_id).update(pixel_spacing_kind="", dicom_file="missing/file.dcm")
    migration = importlib.import_module("imaging.migrations.0005_backfill_spacing_kind")
    migration.backfill(django_apps, None)
    image = Image.objects.get(public_id=kept.image_id)
    assert (image.pixel_spacing_kind, image.laterality) == ("detector", "L")
    assert Image.objects.get(public_id=gone.image_id).pixel_spacing_kind == ""  # no file: left as it was
