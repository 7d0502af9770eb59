"""JPEG 2000 lossless at import (issue 19.1): what the decode costs with each decoder at hand, threaded or not.

    .venv/bin/python benchmarks/j2k_decode.py [--repeats 5] [--threads 1,2]

On the real RG1 chest CR (1955 x 1841, 15 bits, J2K lossless), for every decoder installed: best CPU ms
(resource.getrusage of the process: all its threads) and best wall ms of one full decode, and whether the values
equal those the import stores (pydicom through pylibjpeg-openjpeg). Decoders: pylibjpeg-openjpeg (what the import
runs) and Pillow's OpenJPEG, each with OpenJPEG's own thread pool (OPJ_NUM_THREADS, read by OpenJPEG >= 2.3 when a
codec is created); and, when installed (they are not dependencies: docs/import.md "Speed"), imagecodecs'
OpenJPEG (``numthreads``) and GDCM (python-gdcm, through pydicom). Last row: Pillow's ``reduce = 1`` decode (the
stream's lower wavelet levels only, half the resolution), which the import does not use: every CR/DX image up to
2048 px is displayed at full size.
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILE = ROOT / "fixtures" / "dicom" / "RG1_CR_chest_MONO1_J2K_lossless.dcm"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best_ms(fn, repeats: int):
    """(best CPU ms, best wall ms, the last result)."""
    cpu, wall, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        c0, w0 = _cpu(), time.perf_counter()
        out = fn()
        cpu, wall = min(cpu, _cpu() - c0), min(wall, time.perf_counter() - w0)
    return 1000 * cpu, 1000 * wall, out


def _with_opj_threads(n: int, fn):
    def run():
        os.environ["OPJ_NUM_THREADS"] = str(n)
        try:
            return fn()
        finally:
            os.environ.pop("OPJ_NUM_THREADS", None)
    return run


def _optional():
    try:
        import imagecodecs
    except ImportError:
        imagecodecs = None
    try:
        import gdcm  # noqa: F401  (pydicom's gdcm plugin needs it)
        has_gdcm = True
    except ImportError:
        has_gdcm = False
    return imagecodecs, has_gdcm


def main(argv=None) -> int:
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.encaps import generate_fragmented_frames
    from pydicom.pixels import pixel_array

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", default="1,2", help="thread counts to try (comma-separated)")
    a = p.parse_args(argv)
    threads = [int(t) for t in a.threads.split(",") if t]
    ds = pydicom.dcmread(FILE)
    bits = ds.BitsStored
    stream = b"".join(next(generate_fragmented_frames(ds.PixelData, number_of_frames=1)))
    imagecodecs, has_gdcm = _optional()

    def pydicom_decode(plugin: str):
        return lambda: pixel_array(pydicom.dcmread(FILE), decoding_plugin=plugin)

    def pillow(reduce: int = 0):
        def run():
            with Image.open(io.BytesIO(stream)) as im:
                if reduce:
                    im.reduce = reduce
                im.load()
                return np.asarray(im).astype(np.uint16) >> (16 - bits)  # Pillow scales 15 bits to I;16
        return run

    cases = []
    for n in threads:
        cases.append((f"pylibjpeg-openjpeg (the import), OPJ_NUM_THREADS={n}",
                      _with_opj_threads(n, pydicom_decode("pylibjpeg"))))
    for n in threads:
        cases.append((f"Pillow OpenJPEG, OPJ_NUM_THREADS={n}", _with_opj_threads(n, pillow())))
    if imagecodecs is not None:
        for n in threads:
            cases.append((f"imagecodecs {imagecodecs.__version__} jpeg2k, numthreads={n}",
                          lambda n=n: imagecodecs.jpeg2k_decode(stream, numthreads=n)))
    if has_gdcm:
        cases.append(("GDCM (python-gdcm) through pydicom", pydicom_decode("gdcm")))
    cases.append(("Pillow OpenJPEG, reduce 1 (half resolution)", pillow(1)))

    reference = pydicom.dcmread(FILE).pixel_array
    print(f"{ds.Rows} x {ds.Columns}, {bits} bits, {len(stream)} bytes of J2K; best of {a.repeats}; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'decoder':52} {'CPU ms':>8} {'wall ms':>8} {'shape':>13}  same values as the import")
    for name, fn in cases:
        cpu, wall, arr = best_ms(fn, a.repeats)
        same = arr.shape == reference.shape and bool(np.array_equal(arr, reference))
        print(f"{name:52} {cpu:8.1f} {wall:8.1f} {str(arr.shape):>13}  {same}")
    if imagecodecs is None or not has_gdcm:
        print("not installed:", ", ".join(n for n, ok in (("imagecodecs", imagecodecs), ("python-gdcm", has_gdcm))
                                          if not ok))
    return 0


if __name__ == "__main__":
    sys.exit(main())
