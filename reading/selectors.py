"""Reads that respect permissions and blinding."""
from __future__ import annotations

from trial.models import Trial

from .services import reading_counts


def reading_progress(trial: Trial) -> dict:
    return reading_counts(trial)
