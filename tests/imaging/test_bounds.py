"""Resources bounded before decoding (issue 14, part 4): crafted files refused with a code, and the peak
memory of validating a bomb measured in a fresh process.

Stated limit: validating any of the bombs below keeps the whole process's peak resident memory under
200 MB, interpreter and libraries included (about 65 MB of it), and the Python-traced peak under 20 MB.
Before the bounds, the 1 MB deflate bomb took 3 GB and the JPEG header bomb exhausted a 6 GB address-space
limit (docs in the helper's report)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imaging.dicom import REASON_CODES, DicomRefused, crafted, validate
from imaging.dicom.bounds import BoundExceeded, check_nesting, codestream_size, rle_segments_within

ROOT = Path(__file__).resolve().parents[2]
PEAK_RSS_LIMIT_MB = 200
PEAK_TRACED_LIMIT_MB = 20

_MEASURE = """
import json, sys, tracemalloc
from imaging.dicom import validate, DicomRefused
data = open(sys.argv[1], "rb").read()
tracemalloc.start()
try:
    validate(data, "bomb.dcm")
    code = "accepted"
except DicomRefused as exc:
    code = exc.reason_code
traced = tracemalloc.get_traced_memory()[1]
# VmHWM: this process's peak resident set (ru_maxrss would carry the forking parent's over exec).
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "traced_mb": traced / 2**20, "rss_mb": hwm_kb / 1024}))
"""


def _measure(tmp_path: Path, data: bytes) -> dict:
    path = tmp_path / "bomb.dcm"
    path.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name,build", [
    ("deflate 1 MB -> 1 GB", lambda png: crafted.deflate_bomb(png, inflated_bytes=1 << 30)),
    ("RLE 1 MB segment -> 64 MB", crafted.rle_bomb),
    ("RLE 6000 x 6000 x 16 bit", crafted.rle_huge_dims),
    ("JPEG SOF claims 60000 x 60000", crafted.jpeg_header_bomb),
    ("200 000 empty elements", crafted.element_bomb),
])
def test_bomb_peak_memory_is_bounded(tmp_path, chest_png, name, build):
    data = build(chest_png)
    assert len(data) < 2 * 1024 * 1024
    result = _measure(tmp_path, data)
    assert result["code"] == "too_large", result
    assert result["rss_mb"] < PEAK_RSS_LIMIT_MB, (name, result)
    assert result["traced_mb"] < PEAK_TRACED_LIMIT_MB, (name, result)


@pytest.mark.parametrize("attack,code", [
    ("empty_pixel_data", "no_pixel_data"),
    ("big_endian_undefined_length", "unreadable"),
    ("unknown_vr_in_sequence", "invalid_vr"),
    ("nested_sequences", "too_deep"),
    ("rle_bomb", "too_large"),
    ("jpeg_header_bomb", "too_large"),
])
def test_crafted_files_refused_with_a_code(chest_png, attack, code):
    with pytest.raises(DicomRefused) as info:
        validate(crafted.IMAGE_ATTACKS[attack](chest_png), f"{attack}.dcm")
    assert info.value.reason_code == code and code in REASON_CODES


def test_element_count_checked_on_real_files(dicom_dir, chest_png):
    from imaging.dicom.bounds import count_elements
    from imaging.dicom.synthetic import make_secondary_capture_cxr, to_bytes

    counts = [count_elements(p.read_bytes()) for p in sorted(dicom_dir.rglob("*.dcm"))]
    assert max(counts) < 1000  # real headers: tens to hundreds
    assert 40 < count_elements(to_bytes(make_secondary_capture_cxr(chest_png, compression="rle"))) < 100
    with pytest.raises(DicomRefused) as info:
        validate(crafted.element_bomb(chest_png, elements=2_000), "b.dcm", max_elements=1_000)
    assert info.value.reason_code == "too_large"


def test_non_images_refused():
    for data in (crafted.dicomdir(), crafted.structured_report()):
        with pytest.raises(DicomRefused) as info:
            validate(data, "x")
        assert info.value.reason_code == "not_an_image"


def test_deflate_under_the_limit_is_accepted(chest_png):
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from imaging.dicom.synthetic import make_secondary_capture_cxr, to_bytes

    ds = make_secondary_capture_cxr(chest_png)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    inst = validate(to_bytes(ds), "deflated.dcm")
    assert inst.pixels.shape == (512, 512)
    with pytest.raises(DicomRefused) as info:
        validate(to_bytes(ds), "deflated.dcm", max_inflated_bytes=100_000)
    assert info.value.reason_code == "too_large"


def test_sequence_depth_is_bounded_without_recursion():
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    top = inner = Dataset()
    for _ in range(5000):  # far deeper than the interpreter's recursion limit
        item = Dataset()
        inner.ReferencedImageSequence = Sequence([item])
        inner = item
    with pytest.raises(BoundExceeded) as info:
        check_nesting(top, max_depth=12)
    assert info.value.kind == "too_deep"


def test_stream_headers_read_without_decoding(chest_png):
    from pydicom.encaps import generate_frames

    from imaging.dicom.synthetic import make_secondary_capture_cxr

    for compression, size in (("jpeg_baseline", (512, 512, 1)), ("jpeg2000", (512, 512, 1))):
        ds = make_secondary_capture_cxr(chest_png, compression=compression)
        assert codestream_size(next(generate_frames(ds.PixelData, number_of_frames=1))) == size
    ds = make_secondary_capture_cxr(chest_png, compression="rle", bits_stored=16)
    rle_segments_within(next(generate_frames(ds.PixelData, number_of_frames=1)), 512 * 512, 2)
