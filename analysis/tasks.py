"""Celery task for analysis runs. It runs on the default queue (only ``inference.tasks.*`` go to ``gpu``)."""
from __future__ import annotations

from celery import shared_task

from .services import execute_run


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_analysis_task(run_id: int) -> str:
    """Export 20%, statistics 60%, figures 90%, done 100% (AnalysisRun.progress)."""
    return execute_run(run_id).status
