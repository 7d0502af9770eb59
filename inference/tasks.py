"""Celery tasks on the `gpu` queue. Workers load models once per process (see `worker_process_init`)."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init

log = logging.getLogger(__name__)


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3, soft_time_limit=600, time_limit=660,
)
def make_draft(self, draft_id: int) -> str:
    from .runner import run_draft

    return run_draft(self, draft_id)


@worker_process_init.connect
def preload_models(**kwargs) -> None:
    """Load every active model version once in each worker process, after fork (CUDA is never touched before)."""
    import django

    django.setup()
    from django.db import connections

    from trial.models import DEFAULT_FINDINGS

    from .models import ModelVersion
    from .runner import PermanentDraftError, get_loaded_backend

    codes = [f["code"] for f in DEFAULT_FINDINGS]
    for mv in ModelVersion.objects.filter(active=True):
        try:
            get_loaded_backend(mv, codes)
        except PermanentDraftError as exc:  # the draft task reports it per draft
            log.error("Could not preload %s: %s", mv.name, exc)
    connections.close_all()  # do not share the parent's connection state


@shared_task(acks_late=False)
def sweep_stale_drafts() -> int:
    """Periodic (celery beat, settings.CELERY_BEAT_SCHEDULE): re-send drafts queued for 10 minutes and re-queue
    drafts RUNNING past their time limit -- the same limit their tasks are sent with (inference/serving.py)."""
    from .services import requeue_stale_drafts

    return requeue_stale_drafts(600.0, running_past_limit=True)
