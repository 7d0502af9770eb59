"""Reads of the model registry and drafts."""
from __future__ import annotations

import redis
from django.conf import settings
from django.db.models import Avg, Count, Q

from .models import ArenaModelVersion, ArmModelVersion, Draft, ExpertCalibration, ModelVersion


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


def current_calibration(model_version: ModelVersion, trial) -> ExpertCalibration | None:
    """The calibration new drafts of ``model_version`` in ``trial`` use: the latest fitted on this trial, else the
    latest fitted on any trial (a site may calibrate on a pilot trial first), else None (docs/calibration.md)."""
    cals = ExpertCalibration.objects.select_related("trial").filter(model_version=model_version)
    own = cals.filter(trial=trial).order_by("-fitted_at", "-pk")
    return own.first() or cals.order_by("-fitted_at", "-pk").first()


def ready_draft(case, model_version) -> Draft | None:
    if model_version is None:
        return None
    draft = Draft.objects.filter(case=case, model_version=model_version, status=Draft.Status.READY).first()
    if draft is not None:
        draft.model_version = model_version  # the caller's (the read page shows it): no query for it
    return draft


def drafts_for_trial(trial, status: str = ""):
    qs = Draft.objects.filter(case__trial=trial).select_related("case", "model_version").order_by("-queued_at")
    if status in Draft.Status.values:
        qs = qs.filter(status=status)
    return qs


def draft_summary(trial) -> dict:
    return Draft.objects.filter(case__trial=trial).aggregate(
        total=Count("id"),
        ready=Count("id", filter=Q(status=Draft.Status.READY)),
        failed=Count("id", filter=Q(status=Draft.Status.FAILED)),
        queued=Count("id", filter=Q(status=Draft.Status.QUEUED)),
        running=Count("id", filter=Q(status=Draft.Status.RUNNING)),
        mean_generate_s=Avg("generate_s"),
        mean_queue_wait_s=Avg("queue_wait_s"),
    )


def queue_depth() -> int | None:
    """Messages waiting on the `gpu` queue (Redis broker); None when tasks run in-process or the broker is down."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return None

    try:
        return int(redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1).llen("gpu"))
    except redis.RedisError:
        return None


def arm_model_version(arm) -> ModelVersion | None:
    """The model version that drafts ``arm``'s reads (None for an arm without AI)."""
    try:
        return arm.model_assignment.model_version  # cached when the caller select_related it
    except ArmModelVersion.DoesNotExist:
        return None


RETRIEVAL_NOT_ALLOWED = (
    "Not drafted: the retrieval baseline repeats public report text that an expert could look up, which would "
    "unblind the rating, and this trial does not allow it (trial setting allow_retrieval_baseline, for demos). "
    "Give the AI arm a real model version."
)


def retrieval_not_allowed(trial, model_version: ModelVersion) -> bool:
    """True when ``model_version`` is the retrieval baseline and ``trial`` has not opted in to it
    (docs/design.md section 6)."""
    return model_version.backend == ModelVersion.Backend.RETRIEVAL and not trial.allow_retrieval_baseline


def arena_model_versions(trial) -> list[ModelVersion]:
    """The model versions of ``trial``'s standalone arena (issue 20 item 1), by name: those the coordinator set
    (``ArenaModelVersion``), else the trial's AI arms' versions (the default)."""
    chosen = ArenaModelVersion.objects.filter(trial=trial).values_list("model_version", flat=True)
    ids = set(chosen) or set(ArmModelVersion.objects.filter(arm__trial=trial, arm__is_ai=True)
                             .values_list("model_version", flat=True))
    return list(ModelVersion.objects.filter(pk__in=ids).order_by("name"))


def arena_is_set(trial) -> bool:
    """True when a coordinator chose the arena's versions (not the default)."""
    return ArenaModelVersion.objects.filter(trial=trial).exists()
