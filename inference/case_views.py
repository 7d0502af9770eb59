"""A case's images as a draft uses them (frontal first), shared by the runner and the OOD check."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from PIL import Image as PILImage

from imaging.models import Image
from trial.models import Case


class PermanentDraftError(Exception):
    """Retrying will not help: the draft is marked failed with this message."""


#: Views in the order a draft uses them: frontal first (PA, then AP), laterals and unknown views after.
VIEW_ORDER = ("PA", "AP")


def _view_rank(view_position: str) -> int:
    view = (view_position or "").strip().upper()
    return VIEW_ORDER.index(view) if view in VIEW_ORDER else len(VIEW_ORDER)


def case_views(case: Case) -> list[tuple[Image, PILImage.Image]]:
    """The case's images, frontal first (PA, then AP, then the rest, each by import time), with their display
    renditions (VOI applied, MONOCHROME1 inverted) as RGB: the Janus processor wants RGB."""
    rows = sorted(
        Image.objects.filter(case=case).order_by("created_at", "pk"), key=lambda i: _view_rank(i.view_position)
    )
    views = []
    for img in rows:
        path = Path(settings.MEDIA_ROOT) / img.display_file
        try:
            with PILImage.open(path) as im:
                views.append((img, im.convert("RGB")))
        except OSError as exc:
            raise PermanentDraftError(f"Image {img.public_id} of case {case.code} cannot be read: {exc}") from exc
    if not views:
        raise PermanentDraftError(f"Case {case.code} has no images to draft from.")
    return views


def case_images(case: Case) -> list[PILImage.Image]:
    """The display renditions, frontal first (see :func:`case_views`)."""
    return [im for _img, im in case_views(case)]
