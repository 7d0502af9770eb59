"""The same SOP instance (different bytes) imported from four threads at once is stored once (PostgreSQL
advisory lock on the keyed SOP Instance UID, checked again inside the file's transaction)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

from imaging import services as imports
from imaging.dicom.synthetic import make_secondary_capture_cxr
from imaging.dicom.synthetic import to_bytes as sc_bytes
from imaging.models import Image
from tests.factories.trial import make_trial
from trial.models import Trial

pytestmark = pytest.mark.django_db(transaction=True)
PNG = Path(settings.BASE_DIR) / "fixtures" / "cxr-png" / "00000001_000.png"


def test_concurrent_imports_of_one_sop_instance_store_one_image():
    assert connection.vendor == "postgresql"
    t = make_trial(code="SOPC", status=Trial.Status.SETUP, enrol_readers=False)
    ds = make_secondary_capture_cxr(PNG)
    variants = []
    for i in range(4):
        ds.SeriesDescription = f"CHEST PA {i + 1}"
        variants.append(sc_bytes(ds))
    barrier = threading.Barrier(len(variants))
    results: list[imports.FileResult] = []
    errors: list[Exception] = []

    def worker(i: int, data: bytes) -> None:
        try:
            barrier.wait()
            results.append(imports.import_file(t["coordinator"], t["trial"], t["centers"][0], f"{i}.dcm", data))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, d)) for i, d in enumerate(variants)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sorted(r.status for r in results) == ["duplicate"] * 3 + ["imported"]
    assert Image.objects.count() == 1
    assert len({r.image_id for r in results}) == 1
    stored = {p.name for p in (Path(settings.MEDIA_ROOT) / "images").rglob("*.dcm")}
    assert len(stored) == 1  # the losers' files were removed again
