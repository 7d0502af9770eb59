"""The first window/level request of an image (issue 19.1): server time to have the encoded full range ready.

    .venv/bin/python benchmarks/full_range_first.py [--n 4] [--kinds j2k,raw]

Imports --n copies of the real RG1 chest CR (J2K lossless, or re-encoded uncompressed) through
`imaging.services.import_file` (SQLite and media in a temporary folder, as benchmarks/import.py), then times
`imaging.image_views.full_range_gzip_cache` (what `full.bin?encoding=delta-planes` runs before it sends the file),
CPU (time.process_time) and wall ms, best and median, in three states:
  right after the import: what the import left (since the sixth session the raw cache; the task that encodes it has
      not run: no broker here);
  lazily, no cache at all: the stored DICOM decoded again, planes, gzip (what every first request did before, and
      what an image imported earlier still gets);
  cached: both files there (after the Celery task, or the second request).
It also prints the import's own CPU ms per image, so what the import pays and what the first view saves sit
side by side.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import importlib  # noqa: E402

bench = importlib.import_module("import")  # benchmarks/import.py: _setup, _trial, _copies


def _timed(fn) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return 1000 * (time.process_time() - c0), 1000 * (time.perf_counter() - w0)


def _clear(media: Path, public_id: str) -> None:
    for p in (media / "cache" / "full-range").glob(f"{public_id}.*"):
        p.unlink()


def run(kind: str, n: int, trial, center) -> dict[str, list[tuple[float, float]]]:
    from django.conf import settings

    from imaging import image_views
    from imaging import services as imports
    from imaging.models import Image

    media = Path(settings.MEDIA_ROOT)
    out: dict[str, list[tuple[float, float]]] = {"import": [], "after import": [], "lazily": [], "cached": []}
    for i, data in enumerate(bench._copies(kind, n)):
        c0, w0 = time.process_time(), time.perf_counter()
        result = imports.import_file(None, trial, center, f"{kind}-{i}.dcm", data)
        out["import"].append((1000 * (time.process_time() - c0), 1000 * (time.perf_counter() - w0)))
        image = Image.objects.get(public_id=result.image_id)
        first = functools.partial(image_views.full_range_gzip_cache, image)
        out["after import"].append(_timed(first))
        out["cached"].append(_timed(first))
        _clear(media, image.public_id)
        out["lazily"].append(_timed(first))
    return out


def main() -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--kinds", default="j2k,raw")
    args = ap.parse_args()
    bench._setup()
    trial, center = bench._trial()
    print(f"ms per image, best / median of {args.n} (CPU, wall); {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}")
    for kind in [k for k in args.kinds.split(",") if k]:
        res = run(kind, args.n, trial, center)
        print(bench.KINDS[kind][0])
        for state, times in res.items():
            cpu, wall = [t[0] for t in times], [t[1] for t in times]
            print(f"  {state:14} CPU {min(cpu):7.1f} / {statistics.median(cpu):7.1f}   "
                  f"wall {min(wall):7.1f} / {statistics.median(wall):7.1f}")


if __name__ == "__main__":
    main()
