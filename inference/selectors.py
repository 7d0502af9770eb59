"""Reads of the model registry and drafts."""
from __future__ import annotations

from django.conf import settings

from .models import Draft, ModelVersion


def default_model_version() -> ModelVersion:
    """The active version used for new AI arms: a configured Janus path, else the retrieval baseline."""
    if settings.JANUS_WEIGHTS_PATH:
        mv, _ = ModelVersion.objects.get_or_create(
            name="janus-pro-cxr",
            defaults={"backend": ModelVersion.Backend.JANUS, "weights_path": settings.JANUS_WEIGHTS_PATH},
        )
        return mv
    mv, _ = ModelVersion.objects.get_or_create(
        name="retrieval-baseline-v1", defaults={"backend": ModelVersion.Backend.RETRIEVAL}
    )
    return mv


def ready_draft(case, model_version) -> Draft | None:
    if model_version is None:
        return None
    return Draft.objects.filter(case=case, model_version=model_version, status=Draft.Status.READY).first()
