"""Runs one draft inside a worker: state transitions around the backend call (wired in the inference issue)."""
from __future__ import annotations


def run_draft(task, draft_id: int) -> str:
    raise NotImplementedError("Draft generation is wired in the inference issue.")
