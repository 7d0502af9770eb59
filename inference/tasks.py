"""Celery tasks on the `gpu` queue."""
from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def make_draft(self, draft_id: int) -> str:
    from .runner import run_draft

    return run_draft(self, draft_id)
