"""validate(): every malformed file refused with its specific reason; real chest radiographs accepted."""
from __future__ import annotations

from pathlib import Path

import pytest

from imaging.dicom import REASON_CODES, DicomRefused, validate
from imaging.dicom.synthetic import make_secondary_capture_cxr, to_bytes, truncate

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "fixtures" / "dicom" / "bad"
GOOD = ROOT / "fixtures" / "dicom"

EXPECTED_BAD = {
    "MR_truncated.dcm": "truncated",  # pixel data 8130 of 8192 bytes (also MR)
    "rtplan_truncated.dcm": "truncated",  # data set cut mid-element
    "meta_missing_tsyntax.dcm": "missing_transfer_syntax",
    "no_meta.dcm": "not_dicom",  # starts one byte into an element: junk
    "badVR.dcm": "invalid_vr",  # NumberOfFrames '1A'
    "emri_small_jpeg_2k_lossless_too_short.dcm": "truncated",
    "fodicom_GH1339_truncated_encapsulated.dcm": "truncated",
    "fodicom_GH178_CT_no_pixeldata.dcm": "no_pixel_data",
    "emri_small_MR_multiframe10.dcm": "modality_not_allowed",
    "SYNTHETIC_CR_huge_dims_65535x65535.dcm": "too_large",
}


def _refusal(data: bytes, name: str = "f.dcm", **kwargs) -> DicomRefused:
    with pytest.raises(DicomRefused) as info:
        validate(data, name, **kwargs)
    assert info.value.reason_code in REASON_CODES
    assert info.value.filename == name
    return info.value


def _bad_files() -> list[Path]:
    return sorted(BAD.glob("*.dcm"))


def test_every_bad_file_has_an_expected_reason():
    assert {p.name for p in _bad_files()} == set(EXPECTED_BAD)


@pytest.mark.parametrize("path", _bad_files(), ids=lambda p: p.name)
def test_bad_files_refused_with_specific_reason(path: Path):
    refusal = _refusal(path.read_bytes(), path.name)
    assert refusal.reason_code == EXPECTED_BAD[path.name], refusal.message
    assert refusal.as_dict()["reason_code"] == refusal.reason_code


def test_multiframe_mr_is_multiframe_when_mr_allowed():
    refusal = _refusal((BAD / "emri_small_MR_multiframe10.dcm").read_bytes(), allowed_modalities=("MR",),
                       min_size=0)
    assert refusal.reason_code == "multiframe"


def test_huge_header_refused_without_allocating(monkeypatch):
    import numpy as np

    calls = []
    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *a, **k: calls.append(a) or real_empty(*a, **k))
    refusal = _refusal((BAD / "SYNTHETIC_CR_huge_dims_65535x65535.dcm").read_bytes())
    assert refusal.reason_code == "too_large"
    assert calls == []  # nothing decoded


@pytest.mark.parametrize(
    "name, shape, ts_prefix",
    [
        ("RG1_CR_chest_MONO1_J2K_lossless.dcm", (1955, 1841), "1.2.840.10008.1.2.4.90"),
        ("RG1_CR_chest_MONO1_J2K_lossy.dcm", (1955, 1841), "1.2.840.10008.1.2.4.91"),
        ("SIIM_CR_chest_MONO2_jpeg_baseline.dcm", (1024, 1024), "1.2.840.10008.1.2.4.50"),
        ("NIH_DX_chest_MONO2_implicitLE.dcm", (1024, 1024), "1.2.840.10008.1.2"),
        ("CR-MONO1-10-chest_nometa.dcm", (440, 440), "1.2.840.10008.1.2"),
    ],
)
def test_real_chest_radiographs_import(name, shape, ts_prefix):
    data = (GOOD / name).read_bytes()
    inst = validate(data, name)
    assert inst.pixels.shape == shape
    assert inst.transfer_syntax_uid == ts_prefix
    assert inst.modality in ("CR", "DX")
    assert len(inst.sha256) == 64


def test_file_without_meta_is_read_and_flagged():
    inst = validate((GOOD / "CR-MONO1-10-chest_nometa.dcm").read_bytes(), "nometa.dcm")
    assert "no_file_meta" in inst.flags
    assert inst.dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"


def test_small_and_non_chest_files():
    assert _refusal((GOOD / "pydicom_CR_cspine_MONO1_16x16.dcm").read_bytes()).reason_code == "too_small"
    assert _refusal((GOOD / "highdicom_DX_thorax_MONO1_small.dcm").read_bytes()).reason_code == "too_small"
    tiny = validate((GOOD / "pydicom_CR_cspine_MONO1_16x16.dcm").read_bytes(), "t.dcm", min_size=0)
    assert "view:LL" in tiny.flags
    knee = (GOOD / "RG3_CR_extremity_MONO1_J2K_lossy.dcm").read_bytes()
    assert "body_part:EXTREMITY" in validate(knee, "knee.dcm").flags
    refusal = _refusal(knee, allowed_body_parts=("CHEST", "THORAX", ""))
    assert refusal.reason_code == "body_part_not_allowed"


# ----------------------------------------------------------------------------- synthetic edge cases


def test_synthetic_truncations(chest_png):
    data = to_bytes(make_secondary_capture_cxr(chest_png))
    assert _refusal(truncate(data, 0.6)).reason_code == "truncated"
    assert _refusal(truncate(data, len(data) - 1)).reason_code == "truncated"
    assert _refusal(truncate(data, 100)).reason_code == "not_dicom"
    assert _refusal(b"").reason_code == "not_dicom"
    assert _refusal(b"%PDF-1.7 not an image" * 20).reason_code == "not_dicom"


def test_synthetic_truncated_encapsulated(chest_png):
    data = to_bytes(make_secondary_capture_cxr(chest_png, compression="jpeg_baseline"))
    assert _refusal(truncate(data, 0.7)).reason_code == "truncated"


def test_synthetic_refusals(chest_png):
    def reason(**kwargs):
        return _refusal(to_bytes(make_secondary_capture_cxr(chest_png, **kwargs))).reason_code

    assert reason(pixel_data=False) == "no_pixel_data"
    assert reason(modality="CT") == "modality_not_allowed"
    assert reason(modality="MR", sop_class="1.2.840.10008.5.1.4.1.1.4") == "modality_not_allowed"


def test_synthetic_multiframe_and_colour(chest_png):
    ds = make_secondary_capture_cxr(chest_png)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    assert _refusal(to_bytes(ds)).reason_code == "multiframe"
    ds = make_secondary_capture_cxr(chest_png)
    ds.PhotometricInterpretation = "RGB"
    assert _refusal(to_bytes(ds)).reason_code == "not_grayscale"


def test_synthetic_invalid_vr_and_missing_attributes(chest_png):
    ds = make_secondary_capture_cxr(chest_png, window=(98765.25, 4000))
    data = to_bytes(ds)
    assert data.count(b"98765.25") == 1
    assert _refusal(data.replace(b"98765.25", b"98765.2X")).reason_code == "invalid_vr"
    ds = make_secondary_capture_cxr(chest_png)
    del ds.Rows
    assert _refusal(to_bytes(ds)).reason_code == "missing_image_attributes"
    ds = make_secondary_capture_cxr(chest_png)
    ds.PatientWeight = "71.125"  # removed by de-id anyway: an invalid value is flagged, not refused
    data = to_bytes(ds).replace(b"71.125", b"71,125")
    assert "invalid_value:PatientWeight" in validate(data, "w.dcm").flags


def test_synthetic_size_limits(chest_png):
    data = to_bytes(make_secondary_capture_cxr(chest_png))
    assert _refusal(data, max_pixels=512 * 511).reason_code == "too_large"
    assert _refusal(data, max_bytes=1000).reason_code == "too_large"
    assert _refusal(data, min_size=513).reason_code == "too_small"


def test_synthetic_undecodable_jpeg(chest_png):
    from pydicom.encaps import encapsulate

    ds = make_secondary_capture_cxr(chest_png, compression="jpeg_baseline")
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 this is not a jpeg stream" * 10])
    assert _refusal(to_bytes(ds)).reason_code == "undecodable"


def test_unsupported_transfer_syntax(chest_png):
    ds = make_secondary_capture_cxr(chest_png, compression="jpeg_baseline")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no image decoder
    assert _refusal(to_bytes(ds)).reason_code == "unsupported_transfer_syntax"


@pytest.mark.parametrize(
    "kwargs, dtype, flags",
    [
        ({}, "uint8", []),
        ({"photometric": "MONOCHROME1"}, "uint8", []),
        ({"bits_stored": 12}, "uint16", []),
        ({"bits_stored": 16, "compression": "rle"}, "uint16", []),
        ({"bits_stored": 12, "compression": "jpeg2000"}, "uint16", []),
        ({"compression": "jpeg_baseline"}, "uint8", ["lossy_compressed"]),
        ({"modality": "DX", "burned_in_annotation": True}, "uint8", ["burned_in_annotation"]),
    ],
)
def test_synthetic_accepted(chest_png, kwargs, dtype, flags):
    inst = validate(to_bytes(make_secondary_capture_cxr(chest_png, **kwargs)), "ok.dcm")
    assert inst.pixels.dtype == dtype and inst.pixels.shape == (512, 512)
    assert inst.flags == flags


def test_synthetic_without_meta_accepted(chest_png):
    data = to_bytes(make_secondary_capture_cxr(chest_png, bits_stored=12), implicit_no_meta=True)
    assert data[128:132] != b"DICM"
    assert validate(data, "legacy.dcm").pixels.max() > 0
