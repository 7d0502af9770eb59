"""Images per second through the whole import (validate + de-identify + rendition + store + database rows).

Runs on a throwaway SQLite database and media folder, so it needs no service:
    .venv/bin/python benchmarks/import.py [--n 20]
Full-size CXRs: the real RG1 chest CR (1955 x 1841, 15 bits; as J2K lossless and re-encoded uncompressed with new
UIDs so every file is a new study) and the 1024 x 1024 JPEG-baseline SIIM chest.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20, help="files per kind")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cxr-import-bench-"))
    os.environ.update(DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}", MEDIA_ROOT=str(tmp / "media"),
                      DJANGO_SETTINGS_MODULE="config.settings")
    import django

    django.setup()
    import pydicom
    from django.core.management import call_command
    from pydicom.uid import generate_uid

    from imaging import services as imports
    from imaging.dicom.synthetic import to_bytes
    from tests.factories.trial import make_trial  # the same factory the tests use

    call_command("migrate", verbosity=0)
    t = make_trial(code="BENCH", status="setup", enrol_readers=False, centers=1)
    fix = ROOT / "fixtures" / "dicom"

    def variants(name: str, decompress: bool) -> list[bytes]:
        out = []
        for _ in range(args.n):
            ds = pydicom.dcmread(fix / name, force=True)
            if decompress and ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.decompress()
            ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out.append(to_bytes(ds))
        return out

    kinds = [
        ("RG1 chest CR 1955x1841, uncompressed", variants("RG1_CR_chest_MONO1_J2K_lossless.dcm", True)),
        ("RG1 chest CR 1955x1841, J2K lossless", variants("RG1_CR_chest_MONO1_J2K_lossless.dcm", False)),
        ("SIIM chest CR 1024x1024, JPEG baseline", variants("SIIM_CR_chest_MONO2_jpeg_baseline.dcm", False)),
    ]
    print(f"{'kind':42} {'files':>5} {'seconds':>8} {'images/s':>9} {'ms/image':>9}")
    for label, files in kinds:
        t0 = time.perf_counter()
        for i, data in enumerate(files):
            r = imports.import_file(None, t["trial"], t["centers"][0], f"{i}.dcm", data)
            assert r.status == "imported", r
        dt = time.perf_counter() - t0
        print(f"{label:42} {len(files):5d} {dt:8.2f} {len(files) / dt:9.2f} {1000 * dt / len(files):9.0f}")


if __name__ == "__main__":
    main()
