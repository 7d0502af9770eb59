"""Permission-checked image serving for the viewer (readers, coordinators, and experts with a rating task).

Images are never served from /media/: every file goes through these views, which check
`imaging.selectors.can_view_case_images(user, case)` and answer 404 for an unknown id, 403 for a user who may
not see the case.

URLs (names in the `imaging` namespace), all keyed by the image's opaque `public_id`:

- ``/reading/images/<public_id>/meta.json`` (``image-meta``): what the viewer needs: ``width``, ``height`` (of the
  renditions), ``display`` (the import's viewer metadata, imaging/dicom/rendition.py: ``min``, ``max``,
  ``window_center``, ``window_width`` in modality units; ``full_range`` ``{slope, intercept}`` mapping stored
  16-bit values to modality units; ``invert`` true for MONOCHROME1, whose full range is stored un-inverted), the
  URLs below and ``photometric_interpretation``.
- ``/reading/images/<public_id>/display.png`` (``image-display``): the 8-bit display rendition (VOI applied,
  MONOCHROME1 already inverted). The viewer draws this first: it is small and decodes natively, so the image is on
  screen quickly and the default view is exactly the rendition.
- ``/reading/images/<public_id>/full.bin`` (``image-full``): the full dynamic range for window/level, as raw
  little-endian uint16 pixels, row-major, ``width * height * 2`` bytes; the size is also in the response headers
  ``X-Image-Width`` / ``X-Image-Height``.

Why a binary endpoint and not the 16-bit PNG: browsers decode a 16-bit PNG to 8 bits per channel when it is drawn
on a canvas, which throws away exactly the range window/level needs. The server makes the raw array once and caches
it under ``MEDIA_ROOT/cache/full-range/<public_id>.u16`` (written atomically; regenerated when the source is newer):
since rendition version 2 (``display.full_range.encoding == "dicom"``) from the stored de-identified DICOM with
``imaging.dicom.rendition.full_range``, the function the import windowed the display image from, so the import
stores no second image (docs/import.md "Speed"); for version 1 images by decoding their 16-bit PNG. The viewer
fetches it only when window/level is first used (never at page load) and asks for ``?encoding=delta-planes``:
the same pixels as left-neighbour differences in two byte planes, gzip content-encoded
(``imaging.range_cache.delta_planes``; cached beside the raw file as ``<public_id>.dp.gz``). For the real
1955 x 1841 chest CR the raw array is 7,198,310 bytes and the encoded one 4,481,556 (gzip of the raw array alone:
6,399,203; docs/viewer.md). Since the sixth session the import writes the raw file and a Celery task the encoded one
(imaging/range_cache.py); what is here makes them for older images or after a cache was deleted, identically.
"""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pydicom
from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from PIL import Image as PILImage
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import PageJSONView

from . import range_cache
from .dicom.rendition import full_range
from .models import Image
from .selectors import can_view_case_images
from .serializers import ImageMetaSerializer

CACHE_CONTROL = "private, max-age=3600"
DELTA_PLANES = "delta-planes"
logger = logging.getLogger("imaging.images")


def _image_for(request, public_id: str) -> Image:
    image = get_object_or_404(Image.objects.select_related("case", "case__trial"), public_id=public_id)
    if not can_view_case_images(request.user, image.case):
        # The unknown id's answer: a probe of an image id seen elsewhere learns nothing (ninth session, helper
        # attack; tests/security/test_probe_parity.py).
        raise Http404("No Image matches the given query.")
    return image


def _media_path(relative: str) -> Path:
    """A stored path relative to MEDIA_ROOT, refused if it escapes MEDIA_ROOT or does not exist."""
    if not relative:
        raise Http404("No such rendition.")
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        raise Http404("No such rendition.")
    return path


def _file_response(path: Path, content_type: str, **headers) -> FileResponse:
    resp = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115  (FileResponse closes it)
    resp["Cache-Control"] = CACHE_CONTROL
    resp["X-Content-Type-Options"] = "nosniff"
    for k, v in headers.items():
        resp[k] = str(v)
    return resp


def full_range_cache(image: Image) -> tuple[Path, int, int]:
    """The full range as raw little-endian uint16, made once and cached; returns (path, width, height). The import
    writes it (imaging/range_cache.py); this makes it for images imported before that, or when it was deleted."""
    src = _media_path(image.full_range_file)
    out = range_cache.raw_path(image.public_id)
    meta_w, meta_h = _rendition_size(image)
    if range_cache.fresh(out, src):
        size = out.stat().st_size
        if meta_w and meta_h and size == meta_w * meta_h * 2:
            return out, meta_w, meta_h
    arr = _full_range_from_dicom(image, src, meta_w, meta_h) if src.suffix == ".dcm" else _full_range_from_png(src)
    h, w = arr.shape
    range_cache.write_raw(image.public_id, arr)
    return out, w, h


def _full_range_from_png(src: Path) -> np.ndarray:
    with PILImage.open(src) as im:
        arr = np.asarray(im)
    if arr.ndim == 3:  # a grey+alpha or RGB file: take the first channel
        arr = arr[..., 0]
    return np.clip(arr, 0, 65535).astype("<u2", copy=False)


def _full_range_from_dicom(image: Image, src: Path, width: int, height: int) -> np.ndarray:
    """The full range of a stored DICOM at the display rendition's size (the import's function and size)."""
    ds = pydicom.dcmread(src)
    fr = full_range(ds, max_size=max(width, height))
    expected = (image.display or {}).get("full_range") or {}
    if fr.values.shape != (height, width) or (expected and (
            expected.get("slope") != fr.slope or expected.get("intercept") != fr.intercept)):
        logger.error("full range of image %s does not match its rendition metadata", image.public_id)
        raise Http404("No such rendition.")
    return fr.values.astype("<u2", copy=False)


def _rendition_size(image: Image) -> tuple[int, int]:
    """The renditions' size (the import may downscale; display.width/height), else the stored rows/columns."""
    d = image.display or {}
    w, h = d.get("width"), d.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return w, h
    return image.columns, image.rows


class ImageMetaView(PageJSONView, APIView):
    """The image's metadata (JSON, so a DRF view with its output serializer); the binary renditions below stay
    plain Django views. Login and permission checks as for them (PageJSONView)."""

    # Not in the API schema: a page-side endpoint (session login; /api/ clients get the login redirect).
    @extend_schema(operation_id="image_meta", responses=ImageMetaSerializer, exclude=True)
    def get(self, request, public_id: str):
        image = _image_for(request, public_id)
        width, height = _rendition_size(image)
        resp = Response(ImageMetaSerializer({
            "id": image.public_id,
            "width": width,
            "height": height,
            "photometric_interpretation": image.photometric_interpretation,
            "view_position": image.view_position,
            "pixel_spacing": image.pixel_spacing,
            "pixel_spacing_kind": image.pixel_spacing_kind,
            "rows": image.rows,
            "columns": image.columns,
            "laterality": image.laterality,
            "display": dict(image.display or {}),
            "display_url": reverse("imaging:image-display", args=[image.public_id]),
            "full_url": (reverse("imaging:image-full", args=[image.public_id]) + "?encoding=" + DELTA_PLANES
                         if image.full_range_file else None),
        }).data)
        resp["Cache-Control"] = CACHE_CONTROL
        return resp


@require_GET
def image_display(request, public_id: str):
    image = _image_for(request, public_id)
    return _file_response(_media_path(image.display_file), "image/png")


def full_range_gzip_cache(image: Image) -> tuple[Path, int, int]:
    """The full range, delta byte planes, gzip, made once from the raw cache; (path, width, height). Usually
    already made by the task the import queues (imaging/tasks.py)."""
    raw, w, h = full_range_cache(image)
    out = range_cache.planes_path(raw)
    if range_cache.fresh(out, raw):
        return out, w, h
    return range_cache.write_planes(raw, w, h), w, h


def _accepts_gzip(request) -> bool:
    return any(part.split(";")[0].strip() == "gzip" for part in request.headers.get("Accept-Encoding", "").split(","))


@require_GET
def image_full(request, public_id: str):
    """Raw uint16 by default; ``?encoding=delta-planes`` (what the viewer asks for): delta byte planes, sent
    gzip content-encoded to a client that accepts gzip (every browser), else plain."""
    image = _image_for(request, public_id)
    size = {"X-Image-Width": 0, "X-Image-Height": 0}
    if request.GET.get("encoding") != DELTA_PLANES:
        path, size["X-Image-Width"], size["X-Image-Height"] = full_range_cache(image)
        return _file_response(path, "application/octet-stream", **size, **{"X-Image-Encoding": "u16le"})
    path, size["X-Image-Width"], size["X-Image-Height"] = full_range_gzip_cache(image)
    if _accepts_gzip(request):
        resp = _file_response(path, "application/octet-stream", **size, **{"X-Image-Encoding": DELTA_PLANES})
        resp["Content-Encoding"] = "gzip"
    else:
        resp = HttpResponse(gzip.decompress(path.read_bytes()), content_type="application/octet-stream")
        resp["Cache-Control"] = CACHE_CONTROL
        resp["X-Content-Type-Options"] = "nosniff"
        for k, v in {**size, "X-Image-Encoding": DELTA_PLANES}.items():
            resp[k] = str(v)
    resp["Vary"] = "Accept-Encoding"
    return resp
