"""Celery tasks on the `gpu` queue. Workers load models once per process (see `worker_process_init`)."""
from __future__ import annotations

import logging
from datetime import timedelta

import django
from celery import shared_task
from celery.signals import worker_process_init
from django.db import connections, transaction
from django.utils import timezone

from trial.models import DEFAULT_FINDINGS

from .models import Draft, ModelVersion
from .runner import PermanentDraftError, get_loaded_backend, run_draft
from .serving import time_limit

log = logging.getLogger(__name__)


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3, soft_time_limit=600, time_limit=660,
)
def make_draft(self, draft_id: int) -> str:
    return run_draft(self, draft_id, requeue=send_draft_task)


@worker_process_init.connect
def preload_models(**kwargs) -> None:
    """Load every active model version once in each worker process, after fork (CUDA is never touched before)."""
    django.setup()

    codes = [f["code"] for f in DEFAULT_FINDINGS]
    for mv in ModelVersion.objects.filter(active=True):
        try:
            get_loaded_backend(mv, codes)
        except PermanentDraftError as exc:  # the draft task reports it per draft
            log.error("Could not preload %s: %s", mv.name, exc)
    connections.close_all()  # do not share the parent's connection state


# Sending a draft must fail fast when the broker is down: it runs after the enrolment's commit, inside the
# coordinator's request. kombu would otherwise retry the connection for broker_connection_timeout plus its
# back-off sleeps (about 6 s per draft, measured). One attempt, a short connect timeout, no publish retry; the
# draft stays 'queued' and `manage.py requeue_drafts` sends it once the broker is back.
SEND_TRANSPORT_OPTIONS = {"max_retries": 0, "socket_connect_timeout": 2, "socket_timeout": 5}


def send_draft_task(draft_id: int) -> bool:
    """Send to the broker; if it is down the draft stays queued and `requeue_drafts` sends it later."""
    app = make_draft.app
    try:
        mv = ModelVersion.objects.get(drafts__pk=draft_id)
    except ModelVersion.DoesNotExist:
        return False
    limit = time_limit(mv)  # from max_new_tokens and the measured speed (inference/serving.py)
    options = {"queue": "gpu", "retry": False, "soft_time_limit": limit.soft_s, "time_limit": limit.hard_s}
    try:
        if app.conf.task_always_eager:
            make_draft.apply_async(args=[draft_id], **options)
        else:
            with app.connection_for_write(transport_options=SEND_TRANSPORT_OPTIONS) as conn:
                make_draft.apply_async(args=[draft_id], connection=conn, **options)
        return True
    except Exception as exc:  # broker unreachable: enrolment has committed, the draft waits in 'queued'
        log.warning("Could not queue draft %s: %s", draft_id, exc)
        return False


# The stale sweep lives here, beside the sender it calls: inference.services imports this module (and re-exports
# requeue_stale_drafts for `manage.py requeue_drafts`), so the beat task cannot import services.
def requeue_stale_drafts(
    older_than_s: float = 600.0, *, running_older_than_s: float | None = None, running_past_limit: bool = False,
) -> int:
    """Re-send drafts still queued after `older_than_s` (e.g. the broker was down at enrolment) and, with
    `running_older_than_s`, drafts left RUNNING longer than that (their worker died and the message was lost, e.g.
    the whole host went away): those go back to QUEUED first. With `running_past_limit`, a RUNNING draft is stale
    once past its model version's hard time limit (inference/serving.py, the limit its task is sent with).
    Idempotent: the task itself skips drafts that are already ready, and a late finisher of the old attempt finds
    the draft ready and writes nothing."""
    now = timezone.now()
    if running_older_than_s is not None:
        with transaction.atomic():
            stale = list(
                Draft.objects.select_for_update(skip_locked=True)
                .filter(status=Draft.Status.RUNNING, started_at__lte=now - timedelta(seconds=running_older_than_s))
                .values_list("pk", flat=True)
            )
            Draft.objects.filter(pk__in=stale).update(
                status=Draft.Status.QUEUED, error=f"re-queued: still running after {running_older_than_s:.0f} s"
            )
    else:
        stale = []
    if running_past_limit:
        stale += _requeue_running_past_limit(now)
    cutoff = now - timedelta(seconds=older_than_s)
    ids = set(Draft.objects.filter(status=Draft.Status.QUEUED, queued_at__lte=cutoff).values_list("pk", flat=True))
    return sum(send_draft_task(pk) for pk in sorted(ids | set(stale)))


def _requeue_running_past_limit(now) -> list[int]:
    """RUNNING drafts past their model version's hard time limit go back to QUEUED (one transaction)."""
    requeued: list[int] = []
    with transaction.atomic():
        running = (Draft.objects.select_for_update(skip_locked=True, of=("self",)).select_related("model_version")
                   .filter(status=Draft.Status.RUNNING, started_at__isnull=False))
        limits: dict[int, float] = {}
        for draft in running:
            mv = draft.model_version
            if mv.pk not in limits:
                limits[mv.pk] = time_limit(mv).hard_s
            if draft.started_at <= now - timedelta(seconds=limits[mv.pk]):
                requeued.append(draft.pk)
                Draft.objects.filter(pk=draft.pk).update(
                    status=Draft.Status.QUEUED,
                    error=f"re-queued: still running after its time limit of {limits[mv.pk]:.0f} s",
                )
    return requeued


@shared_task(acks_late=False)
def sweep_stale_drafts() -> int:
    """Periodic (celery beat, settings.CELERY_BEAT_SCHEDULE): re-send drafts queued for 10 minutes and re-queue
    drafts RUNNING past their time limit -- the same limit their tasks are sent with (inference/serving.py)."""
    return requeue_stale_drafts(600.0, running_past_limit=True)
