"""Celery tasks of the enrolment app: the daily reminder of overdue work (CELERY_BEAT_SCHEDULE in config/settings)."""
from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="enrolment.tasks.send_reminders")
def send_reminders() -> dict[str, int]:
    """Reminders for every trial where people are working; answers the number sent per trial."""
    return {code: len(result.sent) for code, result in services.send_all_reminders().items()}
