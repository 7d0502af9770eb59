"""The receivers of the trial and reading apps' signals: the enrolment workflow (docs/architecture.md).

Each runs inside the sender's transaction (signals are sent with `send`), so an error rolls the whole enrolment
back. Order within a receiver is the lock order: reads before drafts (a case's read rows, then its draft rows).
"""
from __future__ import annotations

from inference import services as inference_services
from rating import services as rating_services
from reading import services as reading_services


def make_reads_and_drafts(sender, *, case, actor=None, **kwargs) -> None:
    """A case was enrolled: its reads from the design, then its drafts (queued on commit)."""
    reading_services.create_reads_for_case(case, actor=actor)
    inference_services.queue_drafts_for_case(case)


def make_reads_for_reader(sender, *, membership, actor=None, **kwargs) -> None:
    """A reader was enrolled: their reads of cases already enrolled (crossover and case-randomised designs)."""
    reading_services.on_reader_enrolled(membership, actor=actor)


def top_up_rating_panels(sender, *, trial, **kwargs) -> None:
    """An expert joined: panels that came out short get the new expert."""
    rating_services.top_up_panels(trial)


def make_rating_tasks(sender, *, read, **kwargs) -> None:
    """A read was submitted: once both reads of a case are in, its rating tasks are made."""
    rating_services.on_read_submitted(read)
