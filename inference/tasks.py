"""Celery tasks on the `gpu` queue. Workers load models once per process (see `worker_process_init`)."""
from __future__ import annotations

import logging

import django
from celery import shared_task
from celery.signals import worker_process_init
from django.db import connections

from trial.models import DEFAULT_FINDINGS

from .models import ModelVersion
from .runner import PermanentDraftError, get_loaded_backend, run_draft

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
        if app.conf.task_always_eager:
            make_draft.apply_async(args=[draft_id], queue="gpu", retry=False)
        else:
            with app.connection_for_write(transport_options=SEND_TRANSPORT_OPTIONS) as conn:
                make_draft.apply_async(args=[draft_id], queue="gpu", retry=False, connection=conn)
        return True
    except Exception as exc:  # broker unreachable: enrolment has committed, the draft waits in 'queued'
        log.warning("Could not queue draft %s: %s", draft_id, exc)
        return False
