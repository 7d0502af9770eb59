"""Blinded expert rating: rating tasks (a case's two reports shown as A and B in an order drawn per task), the
expert's worklist, pages and API, panels and their top-up. Owns the Rating model. Sits above `reading` (it rates
reads) and below `enrolment`, which tells it when a read is submitted or an expert joins (docs/architecture.md)."""
