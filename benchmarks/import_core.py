"""Time the pure import core (validate -> deidentify -> to_bytes -> make_rendition) on the fixture files.

Usage: .venv/bin/python benchmarks/import_core.py [repeats]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from imaging.dicom import deidentify, make_rendition, to_bytes, validate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dicom"
FILES = [
    "RG1_CR_chest_MONO1_J2K_lossless.dcm",
    "RG1_CR_chest_MONO1_J2K_lossy.dcm",
    "SIIM_CR_chest_MONO2_jpeg_baseline.dcm",
    "NIH_DX_chest_MONO2_implicitLE.dcm",
    "CR-MONO1-10-chest_nometa.dcm",
]


def main(repeats: int = 3) -> None:
    print(f"{'file':42} {'validate':>9} {'deid':>7} {'write':>7} {'render':>7}  (best of {repeats}, seconds)")
    for name in FILES:
        data = (FIXTURES / name).read_bytes()
        best = [float("inf")] * 4
        for _ in range(repeats):
            t0 = time.perf_counter()
            inst = validate(data, name)
            t1 = time.perf_counter()
            clean, _keys, _burned = deidentify(inst.dataset, uid_root_secret="bench",
                                               pseudonym="BENCH-1")
            t2 = time.perf_counter()
            to_bytes(clean)
            t3 = time.perf_counter()
            make_rendition(clean, pixels=inst.pixels)
            t4 = time.perf_counter()
            best = [min(b, t) for b, t in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True)]
        print(f"{name:42} " + " ".join(f"{b:9.3f}" if i == 0 else f"{b:7.3f}" for i, b in enumerate(best)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
