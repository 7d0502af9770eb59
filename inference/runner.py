"""Runs one draft inside a worker (or in-process when no broker is configured).

Idempotent: a draft that is already ready is left alone, so a redelivered message (worker killed, `acks_late`)
never makes a second draft; the unique constraint (case, model version) backs that up in the database.
Failures that retrying cannot fix (bad weights, no image) mark the draft failed with a clear error at once;
anything else is retried with exponential backoff, then marked failed.
"""
from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from imaging.models import Image
from trial.models import Case

from .models import Draft, ModelVersion
from .services import RETRIEVAL_NOT_ALLOWED, retrieval_not_allowed

log = logging.getLogger(__name__)


class PermanentDraftError(Exception):
    """Retrying will not help: the draft is marked failed with this message."""


def backend_config(mv: ModelVersion, findings: list[str]) -> dict:
    cfg = dict(mv.generation_params or {})
    if mv.weights_path:
        cfg["weights_path"] = mv.weights_path
    if mv.prompt_template:
        cfg["prompt_template"] = mv.prompt_template
    return cfg


def case_images(case: Case) -> list[PILImage.Image]:
    """The display renditions (VOI applied, MONOCHROME1 inverted), as RGB: the Janus processor wants RGB."""
    images = []
    for img in Image.objects.filter(case=case).order_by("created_at"):
        path = Path(settings.MEDIA_ROOT) / img.display_file
        try:
            with PILImage.open(path) as im:
                images.append(im.convert("RGB"))
        except OSError as exc:
            raise PermanentDraftError(f"Image {img.public_id} of case {case.code} cannot be read: {exc}") from exc
    if not images:
        raise PermanentDraftError(f"Case {case.code} has no images to draft from.")
    return images


_bank_lock = threading.Lock()
_trial_banks: dict[tuple[int, int], object] = {}


def trial_reference_bank(trial):
    """A retrieval bank from the trial's own cases with reference reports and images (leave-one-out at query
    time); None when the trial has fewer than two such cases (the bundled IU bank is used then)."""
    from inference.reportbank import ReportBank

    cases = list(Case.objects.filter(trial=trial).exclude(reference_report="").filter(images__isnull=False).distinct())
    if len(cases) < 2:
        return None
    key = (trial.pk, hash(tuple(sorted((c.pk, c.reference_report[:40]) for c in cases))))
    with _bank_lock:
        if key not in _trial_banks:
            entries = []
            for c in cases:
                try:
                    imgs = case_images(c)
                except PermanentDraftError:
                    continue
                entries.append({"id": c.code, "images": imgs, "report": c.reference_report,
                                "labels": c.reference_findings or {}, "source": f"trial:{trial.code}"})
            _trial_banks[key] = ReportBank.from_entries(entries, name=f"{trial.code} reference reports")
        return _trial_banks[key]


def get_loaded_backend(mv: ModelVersion, findings: list[str], trial=None):
    """Loaded once per process (cached by model version config). Returns (backend, seconds spent loading)."""
    import time

    from inference.backends import ModelLoadError, load_backend
    from inference.backends.base import BackendConfig
    from inference.backends.retrieval import RetrievalBackend

    t0 = time.perf_counter()
    try:
        if mv.backend == ModelVersion.Backend.RETRIEVAL and trial is not None:
            bank = trial_reference_bank(trial)
            if bank is not None:
                backend = RetrievalBackend(bank=bank)
                backend.load(BackendConfig.from_dict(backend_config(mv, findings)))
                return backend, time.perf_counter() - t0
        backend = load_backend(mv.backend, backend_config(mv, findings))
    except ModelLoadError as exc:
        raise PermanentDraftError(str(exc)) from exc
    except ValueError as exc:  # bad configuration
        raise PermanentDraftError(f"Model version {mv.name} is misconfigured: {exc}") from exc
    return backend, time.perf_counter() - t0


def _claim(draft_id: int) -> Draft | None:
    with transaction.atomic():
        draft = (Draft.objects.select_for_update(of=("self",))  # the draft row only, not its case and trial
                 .select_related("case__trial", "model_version").get(pk=draft_id))
        if draft.status == Draft.Status.READY:
            return None
        now = timezone.now()
        if draft.started_at is None:
            draft.queue_wait_s = (now - draft.queued_at).total_seconds()
        draft.status = Draft.Status.RUNNING
        draft.started_at = now
        draft.attempts += 1
        draft.worker_host = socket.gethostname()
        draft.save(update_fields=["status", "started_at", "attempts", "worker_host", "queue_wait_s"])
        return draft


def _fail(draft_id: int, message: str) -> None:
    with transaction.atomic():
        draft = Draft.objects.select_for_update().get(pk=draft_id)
        if draft.status == Draft.Status.READY:
            return
        draft.status = Draft.Status.FAILED
        draft.error = message[:4000]
        draft.finished_at = timezone.now()
        draft.save(update_fields=["status", "error", "finished_at"])


def run_draft(task, draft_id: int) -> str:
    try:
        draft = _claim(draft_id)
    except Draft.DoesNotExist:
        return "missing"
    if draft is None:
        return "already ready"
    case, mv = draft.case, draft.model_version
    findings = case.trial.finding_codes
    if retrieval_not_allowed(case.trial, mv):  # the setting may have been turned off after queueing
        _fail(draft_id, RETRIEVAL_NOT_ALLOWED)
        return "failed"
    try:
        images = case_images(case)
        backend, load_s = get_loaded_backend(mv, findings, case.trial)
        seed = int((mv.generation_params or {}).get("seed", 0))
        result = backend.generate(images, findings, {"seed": seed, "exclude_ids": [case.code]})
    except PermanentDraftError as exc:
        _fail(draft_id, str(exc))
        return "failed"
    except SoftTimeLimitExceeded:
        _fail(draft_id, "Generation exceeded the task time limit.")
        return "failed"
    except Retry:
        raise
    except Exception as exc:  # transient (e.g. CUDA OOM, I/O): retry with backoff, then fail clearly
        retries = getattr(task.request, "retries", 0) if task is not None else 0
        max_retries = getattr(task, "max_retries", 0) if task is not None else 0
        if task is not None and not task.request.is_eager and retries < max_retries:
            log.warning("Draft %s failed (%s); retrying", draft_id, exc)
            raise task.retry(exc=exc, countdown=min(60, 2 ** (retries + 1))) from exc
        _fail(draft_id, f"{type(exc).__name__}: {exc}")
        return "failed"
    with transaction.atomic():
        draft = Draft.objects.select_for_update().get(pk=draft_id)
        if draft.status == Draft.Status.READY:
            return "already ready"
        draft.findings_text = result.findings
        draft.impression_text = result.impression
        draft.probabilities = {k: float(v) for k, v in result.probabilities.items()}
        draft.boxes = [b.__dict__ if hasattr(b, "__dict__") else b for b in (result.boxes or [])]
        draft.neighbours = list(result.neighbours or [])
        draft.prompt = result.prompt or ""
        draft.parameters = result.to_dict().get("parameters", {})
        draft.seed = int(result.seed or 0)
        draft.load_s = load_s + float(result.load_s or 0.0)
        draft.generate_s = float(result.generate_s or 0.0)
        draft.status = Draft.Status.READY
        draft.error = ""
        draft.finished_at = timezone.now()
        draft.save()
    return "ready"
