"""Issue 19.1, sixth session: the import writes the viewer's full-range cache from the pixels it decoded, and a real
Celery worker encodes it for sending after the commit; what is served is byte for byte what the image view makes
lazily from the stored DICOM (docs/import.md "Speed"). Real JPEG 2000 file, real PostgreSQL, Redis and Celery."""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
import redis
from django.conf import settings
from django.test import Client
from django.urls import reverse

from config.celery import app
from imaging import image_views, range_cache
from imaging import services as imports
from imaging.models import Image
from tests.factories.trial import make_trial
from tests.processes import CeleryWorker, wait_until
from trial.models import Trial

RG1 = Path(settings.BASE_DIR) / "fixtures" / "dicom" / "RG1_CR_chest_MONO1_J2K_lossless.dcm"


def _import(code: str) -> tuple[dict, Image]:
    t = make_trial(code=code, status=Trial.Status.SETUP, enrol_readers=False)
    r = imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "rg1.dcm", RG1.read_bytes())
    assert r.status == "imported", r
    return t, Image.objects.get(public_id=r.image_id)


def _get(client: Client, image: Image, planes: bool) -> bytes:
    url = reverse("imaging:image-full", args=[image.public_id]) + ("?encoding=delta-planes" if planes else "")
    resp = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert resp.status_code == 200
    assert ("Content-Encoding" in resp) == planes
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


def _client(t: dict) -> Client:
    c = Client()
    c.force_login(t["coordinator"])
    return c


def test_import_writes_the_raw_cache_the_view_would_make(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        t, image = _import("FRC")
    assert len(callbacks) == 1
    raw = range_cache.raw_path(image.public_id)
    assert raw.is_file(), "the import wrote the raw cache"
    at_import = raw.read_bytes()
    w, h = image.display["width"], image.display["height"]
    assert len(at_import) == w * h * 2 and (w, h) == (1841, 1955)
    assert not range_cache.planes_path(raw).exists()  # no broker here (the demo): not queued, made on request

    client = _client(t)
    served_raw = _get(client, image, planes=False)
    served_planes = _get(client, image, planes=True)
    assert served_raw == at_import  # served from the import's cache, not made again

    # the lazy path (the stored J2K DICOM decoded again) makes exactly the same files
    for p in (raw, range_cache.planes_path(raw)):
        p.unlink()
    assert _get(client, image, planes=False) == at_import
    lazy_planes = _get(client, image, planes=True)
    assert lazy_planes == served_planes
    arr = np.frombuffer(at_import, dtype="<u2").reshape(h, w)
    assert gzip.decompress(lazy_planes) == range_cache.delta_planes(arr)
    assert arr.max() > 4095  # the 15-bit range, not the 8-bit display


def test_gzip_huffman_is_smaller_than_level_6_on_the_real_chest(db, django_capture_on_commit_callbacks):
    """The encoder choice of imaging/range_cache.py, on the real 1955 x 1841 chest CR."""
    with django_capture_on_commit_callbacks(execute=True):
        _, image = _import("FRZ")
    arr = np.fromfile(range_cache.raw_path(image.public_id), dtype="<u2").reshape(1955, 1841)
    planes = range_cache.delta_planes(arr)
    fast = range_cache.gzip_huffman(planes)
    assert gzip.decompress(fast) == planes
    assert len(fast) < len(gzip.compress(planes, compresslevel=6, mtime=0))


def test_a_cache_that_cannot_be_written_loses_nothing(db, django_capture_on_commit_callbacks, caplog):
    cache = Path(settings.MEDIA_ROOT) / "cache"
    cache.mkdir(parents=True)
    (cache / "full-range").write_bytes(b"not a folder")  # the cache folder cannot be made
    with caplog.at_level(logging.WARNING, logger="imaging.import"), \
            django_capture_on_commit_callbacks(execute=True):
        _, image = _import("FRX")
    assert "could not write the full-range cache" in caplog.text
    assert Image.objects.filter(pk=image.pk).exists()


@pytest.fixture
def broker(redis_url, settings):
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    old = {k: app.conf.get(k) for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    settings.CELERY_BROKER_URL = redis_url
    app._pool = None  # drop the cached pools: recreated for this broker_url
    app.amqp._producer_pool = None
    yield r
    app.conf.update(**old)
    app._pool = None
    app.amqp._producer_pool = None
    r.flushdb()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_encodes_the_full_range_after_the_import(broker, redis_url, tmp_path):
    worker = CeleryWorker(redis_url, tmp_path / "worker.log", queues="celery")
    try:
        t, image = _import("FRW")  # outside any transaction: the commit hook runs at once and queues the task
        raw = range_cache.raw_path(image.public_id)
        planes = range_cache.planes_path(raw)
        wait_until(planes.is_file, 120, "the worker's encoded full range", worker.log)
    finally:
        worker.stop()
    assert "encode_full_range" in worker.log.read_text()
    by_worker = planes.read_bytes()
    client = _client(t)
    assert _get(client, image, planes=True) == by_worker  # the first window/level only reads the file
    planes.unlink()
    raw.unlink()
    assert _get(client, image, planes=True) == by_worker  # what the view makes lazily is the same
    w, h = image_views._rendition_size(image)
    assert gzip.decompress(by_worker) == range_cache.delta_planes(
        np.fromfile(raw, dtype="<u2").reshape(h, w))
