"""Celery task of the imaging app: the full range's encoded cache, made after an import (default queue; only
``inference.tasks.*`` go to ``gpu``). Sent by name from imaging.services (ImagingConfig.ready registers it)."""
from __future__ import annotations

import logging

from celery import shared_task

from . import range_cache
from .models import Image

logger = logging.getLogger("imaging.images")


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def encode_full_range(image_id: int) -> str:
    """Write ``<public_id>.dp.gz`` from the raw cache the import wrote (what the first window/level request would
    otherwise make: docs/import.md "Speed"). Idempotent; nothing to do when the image or its raw cache is gone."""
    image = Image.objects.filter(pk=image_id).only("public_id", "display", "columns", "rows").first()
    if image is None:
        return "gone"
    raw = range_cache.raw_path(image.public_id)
    d = image.display or {}
    width, height = d.get("width") or image.columns, d.get("height") or image.rows
    if not raw.is_file() or raw.stat().st_size != width * height * 2:
        return "no raw cache"
    if range_cache.fresh(range_cache.planes_path(raw), raw):
        return "fresh"
    range_cache.write_planes(raw, width, height)
    return "written"
