"""Import speed: CPU ms per stage of one radiograph, and images/s through `import_cases --jobs N` for N = 1..jobs.

Runs after `make install` (no dev extra) on a throwaway SQLite database and media folder, so it needs no service:
    .venv/bin/python benchmarks/import.py [--n 20] [--jobs 2] [--kinds raw,j2k,htj2k,jpeg]
or on PostgreSQL: DATABASE_URL=postgres://... .venv/bin/python benchmarks/import.py (it creates trial BENCH-<time>).

Files: the real RG1 chest CR (1955 x 1841, 15 bits; as JPEG 2000 lossless, re-encoded uncompressed, and as
High-Throughput JPEG 2000 lossless: fixtures/LICENSES.md; ``--kinds raw,j2k,htj2k,jpeg``), and the
1024 x 1024 JPEG-baseline SIIM chest, each copy with new UIDs so that every file is a new study.
Stages are CPU time (time.process_time) of the import's own functions, in its order, best of --n files ("window"
includes the full range's values, "full-range cache" is writing them for the viewer: imaging/range_cache.py); "store"
is the rest of `imaging.services.import_file` (writing the files, the database rows, the audit entries).
The jobs table is wall-clock images/s through `imaging.services.import_paths` (what `import_cases --jobs` runs),
with the CPU ms per image of the workers; on a busy machine the wall clock is only as good as the free cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIX = ROOT / "fixtures" / "dicom"
KINDS = {
    "raw": ("RG1 CR 1955x1841 uncompressed", "RG1_CR_chest_MONO1_J2K_lossless.dcm", True),
    "j2k": ("RG1 CR 1955x1841 J2K lossless", "RG1_CR_chest_MONO1_J2K_lossless.dcm", False),
    "htj2k": ("RG1 CR 1955x1841 HTJ2K lossless", "RG1_CR_chest_MONO1_HTJ2K_lossless.dcm", False),
    "jpeg": ("SIIM CR 1024x1024 JPEG baseline", "SIIM_CR_chest_MONO2_jpeg_baseline.dcm", False),
}
STAGES = ("hash", "validate+decode", "deidentify", "write DICOM", "hash stored", "window (tables)", "PNG encode",
          "full-range cache", "store", "total")


def _setup() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cxr-import-bench-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _trial():
    """A trial in set-up with one center, made through the trial's services (no test factories needed)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from trial import services

    code = f"BENCH-{int(time.time() * 1000) % 10**9}"
    user = get_user_model().objects.create_user(username=f"{code.lower()}-coord", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    user = get_user_model().objects.get(pk=user.pk)
    trial = services.create_trial(user, code=code, title="Import benchmark", design="paired_by_case",
                                  allow_retrieval_baseline=True)
    center = services.add_center(user, trial, code="c1", name="Center 1")
    return trial, center


def _copies(kind: str, n: int) -> list[bytes]:
    import pydicom
    from pydicom.uid import generate_uid

    from imaging.dicom.synthetic import to_bytes

    _, name, decompress = KINDS[kind]
    template = pydicom.dcmread(FIX / name, force=True)
    if decompress and template.file_meta.TransferSyntaxUID.is_compressed:
        template.decompress()
    out = []
    for _ in range(n):
        template.StudyInstanceUID, template.SOPInstanceUID = generate_uid(), generate_uid()
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        out.append(to_bytes(template))
    return out


def stage_times(trial, center, files: list[bytes]) -> dict[str, float]:
    """Best CPU ms per stage over the files (each stage timed on the same file in the import's order)."""
    from imaging import range_cache
    from imaging import services as imports
    from imaging.dicom import deidentify, make_rendition, to_bytes, validate
    from imaging.dicom.rendition import encode_png

    best = dict.fromkeys(STAGES, float("inf"))
    clock = time.process_time
    for i, data in enumerate(files):
        t = [clock()]
        sha = hashlib.sha256(data).hexdigest()
        t.append(clock())
        inst = validate(data, f"{i}.dcm", sha256=sha)
        t.append(clock())
        deid = deidentify(inst.dataset, uid_root_secret=trial.secret, pseudonym="BENCH-1")
        t.append(clock())
        stored = to_bytes(deid.dataset)
        t.append(clock())
        hashlib.sha256(stored).hexdigest()
        t.append(clock())
        r = make_rendition(deid.dataset, pixels=inst.pixels, with_full_range=True)
        t.append(clock())
        encode_png(r.display8)
        t.append(clock())
        range_cache.write_raw(f"bench-{i}", r.full16)  # what the import's commit hook writes
        t.append(clock())
        steps = [b - a for a, b in zip(t, t[1:], strict=False)]
        steps[-3] -= steps[-2]  # make_rendition includes one PNG encode: window = rendition - encode
        c0 = clock()
        result = imports.import_file(None, trial, center, f"{i}.dcm", data)
        total = clock() - c0
        assert result.status == "imported", result
        steps.append(max(0.0, total - sum(steps)))
        steps.append(total)
        for name, v in zip(STAGES, steps, strict=True):
            best[name] = min(best[name], 1000 * v)
    return best


def jobs_rate(trial, center, files: list[bytes], jobs: int, folder: Path) -> tuple[float, float]:
    """(images/s wall clock, CPU ms per image of the workers) importing the files with `jobs` processes."""
    from imaging.services import import_paths

    folder.mkdir(parents=True)
    paths = []
    for i, data in enumerate(files):
        (folder / f"{i:04d}.dcm").write_bytes(data)
        paths.append((f"{i:04d}.dcm", folder / f"{i:04d}.dcm"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    results = import_paths(None, trial, center, paths, jobs=jobs)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    assert all(r.status == "imported" for r in results), [r for r in results if r.status != "imported"][:3]
    cpu = sum((a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) for a, b in zip(after, before, strict=True))
    return len(files) / wall, 1000 * cpu / len(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="files per kind and measurement (default 20)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="largest number of worker processes")
    ap.add_argument("--kinds", default="raw,j2k,htj2k,jpeg", help=f"comma-separated of {', '.join(KINDS)}")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file (for a combined table)")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    _setup()
    trial, center = _trial()
    work = Path(os.environ["MEDIA_ROOT"]).parent / "incoming"

    print(f"CPU ms per image, best of {args.n} (single process; {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f})")
    print(f"{'stage':18}" + "".join(f"{KINDS[k][0]:>34}" for k in kinds))
    columns = [stage_times(trial, center, _copies(k, args.n)) for k in kinds]
    for stage in STAGES:
        print(f"{stage:18}" + "".join(f"{c[stage]:34.1f}" for c in columns))
    print(f"{'images/s per core':18}" + "".join(f"{1000 / c['total']:34.1f}" for c in columns))

    print(f"\nimport_cases --jobs N: images/s (wall clock), CPU ms per image; {args.n} files per run")
    print(f"{'jobs':>4}" + "".join(f"{KINDS[k][0]:>34}" for k in kinds))
    figures: dict = {"machine": {"cores": os.cpu_count(), "load": os.getloadavg()[0]}, "n": args.n,
                     "stages_cpu_ms": dict(zip(kinds, columns, strict=True)), "jobs": {}}
    for jobs in range(1, args.jobs + 1):
        cells = []
        for k in kinds:
            rate, cpu = jobs_rate(trial, center, _copies(k, args.n), jobs, work / f"{k}-{jobs}")
            cells.append(f"{rate:9.1f}/s {cpu:8.0f} ms CPU")
            figures["jobs"].setdefault(k, {})[jobs] = {"images_per_s": rate, "cpu_ms_per_image": cpu}
        print(f"{jobs:4d}" + "".join(f"{c:>34}" for c in cells))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
