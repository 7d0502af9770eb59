"""The case's images for the rating page, addressed by Image.public_id (per image, shared by both reports).
The files and their metadata are served by imaging's image endpoints, whose permission
(`imaging.selectors.can_view_case_images`) admits an expert with a rating task for the case (rule registered in
rating/apps.py)."""
from __future__ import annotations

from imaging.selectors import image_entries as case_image_entries
from trial.models import Case


def image_entries(case: Case) -> list[dict]:
    """[{id, meta_url}]: the viewer loads each image's meta.json, which gives the rendition URLs."""
    return [{"id": e["id"], "meta_url": e["meta_url"]} for e in case_image_entries(case)]
