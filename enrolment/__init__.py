"""Enrolment workflow: what happens across apps when the trial app enrols a case or a reader, an expert joins,
or a read is submitted (make reads, queue drafts, make and top up rating panels), in one place above the apps it
coordinates; and setting a trial up from a protocol file (trial, arms and their model versions). The trial app
announces these events as signals; the receivers here call the apps' services explicitly, in today's lock order
(docs/architecture.md)."""
