"""The case's images for the rating page, addressed by Image.public_id (per image, shared by both reports).
The files and their metadata are served by the reading app's image endpoints (reading/image_views.py), whose
permission (`reading.selectors.can_view_case_images`) lets an expert with a rating task for the case see them."""
from __future__ import annotations

from trial.models import Case


def image_entries(case: Case) -> list[dict]:
    """[{id, meta_url}]: the viewer loads each image's meta.json, which gives the rendition URLs."""
    from .image_views import image_entries as reading_image_entries

    return [{"id": e["id"], "meta_url": e["meta_url"]} for e in reading_image_entries(case)]
