"""JPEG 2000 lossless at import (issue 19.1): what the decode costs, and what a reduced-resolution decode would save.

    .venv/bin/python benchmarks/j2k_decode.py [--repeats 3]

On the real RG1 chest CR (1955 x 1841, 15 bits, J2K lossless), best CPU ms (time.process_time) of: the full decode
through pydicom (pylibjpeg-openjpeg, what the import runs), the same stream through Pillow's OpenJPEG, Pillow's
resolution-reduced decode (``reduce`` 1: the stream's own lower wavelet levels, no full decode), and the
display rendition made from each. Every CR/DX image up to 2048 px is displayed at full size (rendition max_size),
so a reduced decode would halve what readers see of this image: this script gives the figures for that decision,
the import does not use it (docs/import.md "Speed").
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILE = ROOT / "fixtures" / "dicom" / "RG1_CR_chest_MONO1_J2K_lossless.dcm"


def best_ms(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        c0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - c0)
    return 1000 * best, out


def main(argv=None) -> int:
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.encaps import generate_fragmented_frames

    from imaging.dicom.rendition import make_rendition

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    ds = pydicom.dcmread(FILE)
    stream = b"".join(next(generate_fragmented_frames(ds.PixelData, number_of_frames=1)))

    def pydicom_full():
        fresh = pydicom.dcmread(FILE)
        return fresh.pixel_array

    def pillow(reduce: int):
        def run():
            with Image.open(io.BytesIO(stream)) as im:
                if reduce:
                    im.reduce = reduce
                im.load()
                return np.asarray(im)
        return run

    rows = []
    ms, full = best_ms(pydicom_full, a.repeats)
    rows.append(("pydicom / pylibjpeg-openjpeg, full", ms, full))
    for r in (0, 1):  # Pillow 13 refuses reduce 2 on this stream ("broken data stream")
        ms, arr = best_ms(pillow(r), a.repeats)
        rows.append((f"Pillow OpenJPEG, reduce {r}", ms, arr))
    print(f"{ds.Rows} x {ds.Columns}, {ds.BitsStored} bits, {len(stream)} bytes of J2K; best of {a.repeats}, CPU ms")
    print(f"{'decode':38} {'decode ms':>9} {'shape':>12} {'rendition ms':>12} {'display':>10}")
    for name, ms, arr in rows:
        # Pillow scales a 15-bit stream to 16 bits (I;16): back to the stored values
        stored = arr.astype(np.uint16) >> (16 - ds.BitsStored if "Pillow" in name else 0)
        rms, rend = best_ms(lambda s=stored: make_rendition(ds, pixels=s), a.repeats)
        print(f"{name:38} {ms:9.1f} {str(arr.shape):>12} {rms:12.1f} {rend.width:>5}x{rend.height}")
    print("Pillow's full decode has the same stored values:",
          bool(np.array_equal(rows[0][2], rows[1][2].astype(np.uint16) >> (16 - ds.BitsStored))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
