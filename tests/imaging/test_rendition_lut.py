"""Rendition version 2 (lookup tables over stored values, fast PNG) against version 1's per-pixel float pipeline.

Not downscaled: the 8-bit display image is *identical* to the float pipeline's, and so is the 16-bit full range.
Downscaled (larger than max_size): the full range is identical, the display within one grey level (the window is
applied to the 16-bit rounded values instead of the unrounded Lanczos output).
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from imaging.dicom import make_rendition, validate
from imaging.dicom.rendition import encode_png, full_range, percentiles_from_counts
from imaging.dicom.synthetic import make_secondary_capture_cxr
from tests.imaging.reference_rendition import float_rendition

REAL = ["RG1_CR_chest_MONO1_J2K_lossless.dcm", "RG1_CR_chest_MONO1_J2K_lossy.dcm",
        "SIIM_CR_chest_MONO2_jpeg_baseline.dcm", "NIH_DX_chest_MONO2_implicitLE.dcm", "CR-MONO1-10-chest_nometa.dcm"]


def _decoded(r) -> np.ndarray:
    with Image.open(io.BytesIO(r.display_png)) as im:
        assert im.mode == "L" and im.size == (r.width, r.height)
        return np.asarray(im)


def _check(ds: Dataset, pixels: np.ndarray | None = None, max_size: int = 2048) -> tuple[int, dict]:
    """Largest grey-level difference to the float pipeline; asserts the full range and the window are the same."""
    r = make_rendition(ds, pixels=pixels, max_size=max_size, with_full_range=True)
    ref8, ref16, ref = float_rendition(ds, pixels=pixels, max_size=max_size)
    disp = _decoded(r)
    assert np.array_equal(disp, r.display8)  # the PNG holds exactly the computed pixels
    fr = full_range(ds, pixels=pixels, max_size=max_size)
    assert np.array_equal(fr.values, ref16)
    # what the import writes to the viewer's cache (Rendition.full16) is what the view would derive, exactly
    assert r.full16 is not None and r.full16.dtype == np.uint16 and np.array_equal(r.full16, fr.values)
    assert (fr.slope, fr.intercept) == (ref["slope"], ref["min"]) == (
        r.display["full_range"]["slope"], r.display["full_range"]["intercept"])
    for k in ("window_center", "window_width", "window_source", "voi_lut_function", "min", "max"):
        assert r.display[k] == ref[k], k
    return int(np.abs(disp.astype(int) - ref8.astype(int)).max()), r.display


@pytest.mark.parametrize("name", REAL)
def test_real_files_identical_to_float_pipeline(dicom_dir, name):
    inst = validate((dicom_dir / name).read_bytes(), name)
    diff, _ = _check(inst.dataset, inst.pixels)
    assert diff == 0


@pytest.mark.parametrize("name", REAL[:4])
def test_real_files_downscaled_within_one_grey_level(dicom_dir, name):
    inst = validate((dicom_dir / name).read_bytes(), name)
    diff, display = _check(inst.dataset, inst.pixels, max_size=700)
    assert display["scale"] < 1 and diff <= 1


def _ramp(dtype=np.uint16, lo: int = 0, hi: int = 4095, shape=(300, 280), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, size=shape).astype(dtype)


def _synthetic(chest_png, **kw) -> Dataset:
    return make_secondary_capture_cxr(chest_png, bits_stored=12, pixels=_ramp(), **kw)


@pytest.mark.parametrize("setup", [
    "auto", "window", "window_mono1", "rescale_auto", "fractional_rescale", "negative_slope", "sigmoid",
    "linear_exact", "voi_lut", "modality_lut", "signed",
])
def test_synthetic_headers_identical_to_float_pipeline(chest_png, setup):
    ds = _synthetic(chest_png, window=(1800, 2500) if setup.startswith("window") or setup in (
        "sigmoid", "linear_exact") else None)
    pixels = None
    if setup == "window_mono1":
        ds.PhotometricInterpretation = "MONOCHROME1"
    elif setup == "rescale_auto":
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1024
    elif setup == "fractional_rescale":  # not integral: the full range gets slope span/65535
        ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 0.37, -12.5, 700, 900
    elif setup == "negative_slope":
        ds.RescaleSlope, ds.RescaleIntercept = -1, 4095
    elif setup == "sigmoid":
        ds.VOILUTFunction = "SIGMOID"
    elif setup == "linear_exact":
        ds.VOILUTFunction = "LINEAR_EXACT"
    elif setup == "voi_lut":
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 8]
        item.LUTData = [255 - min(255, i // 16) for i in range(4096)]
        ds.VOILUTSequence = Sequence([item])
    elif setup == "modality_lut":  # a LUT need not be monotonic
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 16]
        item.LUTData = [(i * 7919) % 5000 for i in range(4096)]
        item.ModalityLUTType = "US"
        ds.ModalityLUTSequence = Sequence([item])
    elif setup == "signed":
        pixels = _ramp(np.int16, -1500, 2500)
        ds.PixelRepresentation = 1
        ds.PixelData = pixels.tobytes()
    diff, display = _check(ds, pixels)
    assert diff == 0, display


def test_percentiles_from_counts_equal_numpy():
    rng = np.random.default_rng(3)
    for n, k in ((1, 3), (2, 5), (1000, 17), (1955 * 1841, 4096)):
        values = np.sort(rng.normal(100, 50, size=k)) * rng.choice([1, -1])
        pixels_idx = rng.integers(0, k, size=n)
        counts = np.bincount(pixels_idx, minlength=k)
        got = percentiles_from_counts(values, counts, (0.5, 99.5))
        want = np.percentile(values[pixels_idx], [0.5, 99.5])
        assert got.tolist() == want.tolist()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_encoder_round_trips_losslessly(dtype):
    rng = np.random.default_rng(5)
    hi = np.iinfo(dtype).max
    arr = rng.integers(0, hi + 1, size=(257, 131)).astype(dtype)
    arr[:10] = hi  # wrap-around of the Up filter
    arr[10:20] = 0
    data = encode_png(arr)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        back = np.asarray(im)
    assert back.dtype.itemsize == arr.dtype.itemsize and np.array_equal(back.astype(dtype), arr)
    assert b"tEXt" not in data and b"iTXt" not in data and b"zTXt" not in data and b"tIME" not in data


def test_full_range_from_stored_file_equals_the_import(dicom_dir, tmp_path):
    """What the image view derives from the stored (re-encoded, uncompressed or J2K) file is the import's range."""
    import pydicom

    from imaging.dicom import deidentify, to_bytes

    inst = validate((dicom_dir / REAL[0]).read_bytes(), REAL[0])
    deid = deidentify(inst.dataset, uid_root_secret="test", pseudonym="T-1")
    r = make_rendition(deid.dataset, pixels=inst.pixels, with_full_range=True)
    assert make_rendition(deid.dataset, pixels=inst.pixels).full16 is None  # only when asked for
    (tmp_path / "x.dcm").write_bytes(to_bytes(deid.dataset))
    stored = pydicom.dcmread(tmp_path / "x.dcm")
    fr = full_range(stored, max_size=max(r.width, r.height))
    _, ref16, _ = float_rendition(inst.dataset, pixels=inst.pixels)
    assert np.array_equal(fr.values, ref16) and fr.values.max() > 255
    assert np.array_equal(r.full16, fr.values)  # the import's cache equals what the stored file gives
    assert (fr.slope, fr.intercept) == (r.display["full_range"]["slope"], r.display["full_range"]["intercept"])


def test_htj2k_lossless_decodes_to_the_j2k_files_values(dicom_dir):
    """The High-Throughput JPEG 2000 copy of RG1 (fixtures/LICENSES.md) goes through the import's own decoder
    (pydicom + pylibjpeg-openjpeg, no other package) to exactly the stored values of the JPEG 2000 file, and so to the
    same display image and full range: the J2K import speed for sites that can send HTJ2K (docs/import.md "Speed")."""
    j2k = validate((dicom_dir / REAL[0]).read_bytes(), REAL[0])
    name = "RG1_CR_chest_MONO1_HTJ2K_lossless.dcm"
    ht = validate((dicom_dir / name).read_bytes(), name)
    assert ht.transfer_syntax_uid == "1.2.840.10008.1.2.4.201" and "lossy_compressed" not in ht.flags
    assert ht.pixels.dtype == j2k.pixels.dtype and np.array_equal(ht.pixels, j2k.pixels)
    a = make_rendition(ht.dataset, pixels=ht.pixels, with_full_range=True)
    b = make_rendition(j2k.dataset, pixels=j2k.pixels, with_full_range=True)
    assert a.display_png == b.display_png and np.array_equal(a.full16, b.full16)
