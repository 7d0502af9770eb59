"""Inference: model versions and drafts, the Celery tasks that make them on the `gpu` queue, the drafts page, and
the Django-free backends (`inference.backends`: retrieval baseline, Janus, expert classifier). Sits above imaging
(it reads case images) (docs/architecture.md)."""
