"""make_rendition() and instance_summary(): LUTs applied, MONOCHROME1 inverted, PNG formats right."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imaging.dicom import instance_summary, make_rendition, validate
from imaging.dicom.rendition import full_range
from imaging.dicom.synthetic import make_secondary_capture_cxr


def _png(data: bytes) -> tuple[Image.Image, np.ndarray]:
    img = Image.open(io.BytesIO(data))
    return img, np.asarray(img)


def _block_image(value_low: int, value_high: int, dtype=np.uint16) -> np.ndarray:
    arr = np.full((300, 300), value_high, dtype=dtype)
    arr[100:200, 100:200] = value_low  # a known square of LOW stored values
    return arr


@pytest.mark.parametrize("photometric, square_bright", [("MONOCHROME1", True), ("MONOCHROME2", False)])
def test_monochrome1_inverted_with_pixels(chest_png, photometric, square_bright):
    ds = make_secondary_capture_cxr(chest_png, bits_stored=12, pixels=_block_image(100, 3900),
                                    photometric="MONOCHROME2", window=(2000, 4000))
    ds.PhotometricInterpretation = photometric  # same stored values, only the header differs
    r = make_rendition(ds)
    _, disp = _png(r.display_png)
    square, surround = disp[120:180, 120:180].mean(), disp[:50, :50].mean()
    assert (square > 200 and surround < 55) if square_bright else (square < 55 and surround > 200)
    assert r.display["invert"] is (photometric == "MONOCHROME1")
    # full range: not inverted, exact stored values (slope 1, intercept = min)
    full = full_range(ds).values
    assert full.dtype == np.uint16
    fr = r.display["full_range"]
    assert fr["slope"] == 1.0 and fr["intercept"] == 100.0
    assert full[150, 150] * fr["slope"] + fr["intercept"] == 100
    assert full[0, 0] * fr["slope"] + fr["intercept"] == 3900


def test_rescale_and_auto_window(chest_png):
    ds = make_secondary_capture_cxr(chest_png, bits_stored=12, pixels=_block_image(0, 4000), rescale=(2.0, -1024))
    r = make_rendition(ds)
    assert r.display["min"] == -1024 and r.display["max"] == 4000 * 2 - 1024
    assert r.display["window_source"] == "auto"
    full = full_range(ds).values
    assert full.max() * r.display["full_range"]["slope"] + r.display["full_range"]["intercept"] == 6976


def test_voi_lut_sequence_used(chest_png):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = make_secondary_capture_cxr(chest_png, bits_stored=12, pixels=_block_image(10, 1000))
    item = Dataset()
    item.LUTDescriptor = [1024, 0, 8]
    item.LUTData = [255 - min(255, i // 4) for i in range(1024)]  # an inverting LUT
    ds.VOILUTSequence = Sequence([item])
    r = make_rendition(ds)
    _, disp = _png(r.display_png)
    assert r.display["window_source"] == "voi_lut"
    assert disp[150, 150] > disp[0, 0]


def test_real_rg1_mono1_chest_bone_bright_lungs_dark(dicom_dir):
    inst = validate((dicom_dir / "RG1_CR_chest_MONO1_J2K_lossless.dcm").read_bytes(), "rg1.dcm")
    assert inst.dataset.PhotometricInterpretation == "MONOCHROME1"
    r = make_rendition(inst.dataset, pixels=inst.pixels)
    _, disp = _png(r.display_png)
    h, w = disp.shape
    spine = disp[int(h * 0.35):int(h * 0.55), int(w * 0.47):int(w * 0.53)].mean()
    right_lung = disp[int(h * 0.30):int(h * 0.50), int(w * 0.20):int(w * 0.32)].mean()
    left_lung = disp[int(h * 0.30):int(h * 0.50), int(w * 0.68):int(w * 0.80)].mean()
    assert spine > right_lung + 25 and spine > left_lung + 25, (spine, right_lung, left_lung)
    assert r.display["invert"] is True and r.display["window_source"] == "file"


def test_jpeg_baseline_real_renders(dicom_dir):
    inst = validate((dicom_dir / "SIIM_CR_chest_MONO2_jpeg_baseline.dcm").read_bytes(), "siim.dcm")
    r = make_rendition(inst.dataset, pixels=inst.pixels)
    img, disp = _png(r.display_png)
    assert img.mode == "L" and disp.shape == (1024, 1024) and disp.std() > 20


def test_downscale_to_max_size(chest_png):
    ds = make_secondary_capture_cxr(chest_png, bits_stored=12)
    r = make_rendition(ds, max_size=256)
    img8, _ = _png(r.display_png)
    full = full_range(ds, max_size=256).values
    assert img8.size == (256, 256) == (r.width, r.height) and full.shape == (256, 256)
    assert r.display["scale"] == 0.5
    assert r.display["pixel_spacing_mm"] == pytest.approx([0.286, 0.286])


def test_png_has_no_metadata_chunks(chest_png):
    r = make_rendition(make_secondary_capture_cxr(chest_png))
    for data in (r.display_png,):
        assert b"tEXt" not in data and b"iTXt" not in data and b"zTXt" not in data


def test_instance_summary(dicom_dir, chest_png):
    inst = validate((dicom_dir / "RG1_CR_chest_MONO1_J2K_lossy.dcm").read_bytes(), "rg1.dcm")
    s = instance_summary(inst.dataset)
    assert (s.modality, s.view_position, s.rows, s.columns) == ("CR", "PA", 1955, 1841)
    assert (s.bits_allocated, s.bits_stored, s.photometric_interpretation) == (16, 15, "MONOCHROME1")
    assert s.pixel_spacing is None  # RG1 says 0.000\0.000: treated as unknown
    d = instance_summary(make_secondary_capture_cxr(chest_png)).as_dict()
    assert d["pixel_spacing"] == [0.143, 0.143] and d["pixel_spacing_source"] == "PixelSpacing"
    assert d["study_instance_uid"] and d["sop_instance_uid"]
