"""Runs drafts inside a worker (or in-process when no broker is configured).

Idempotent: a draft that is already ready is left alone, so a redelivered message (worker killed, `acks_late`)
never makes a second draft; the unique constraint (case, model version) backs that up in the database.
Failures that retrying cannot fix (bad weights, no image, out of memory even at half the batch) mark the draft
failed with a clear error at once; anything else is retried with exponential backoff, then marked failed.

Dynamic batching (janus): the task that claims a draft also claims up to ``options.batch_max - 1`` other queued
drafts of the same model version, waiting up to ``options.batch_window_ms`` for them, and generates them in one
left-padded batch; each is stored on its own with ``parameters.batch_size``. Their own messages then find them
ready (or running in that batch) and do nothing. Chosen over celery-batches because the drafts' state already
lives in PostgreSQL (claims with ``SKIP LOCKED``), so acks_late, redelivery and the stale sweep keep working per
draft, and no extra dependency is needed (docs/janus.md).
"""
from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable

from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from inference.backends import ModelLoadError, load_backend
from inference.backends.base import BackendConfig, GenerationRequest
from inference.backends.calibration import apply_calibration, calibration_digest
from inference.backends.grounding import ground_result
from inference.backends.retrieval import RetrievalBackend
from inference.reportbank import ReportBank
from trial.models import Case

from . import serving
from .case_views import VIEW_ORDER, PermanentDraftError, case_images, case_views  # noqa: F401 - re-exported
from .model_config import backend_config  # noqa: F401 - re-exported (tests, benchmarks)
from .models import Draft, ExpertCalibration, ModelVersion
from .ood import apply as apply_ood
from .ood import safe_assess
from .selectors import RETRIEVAL_NOT_ALLOWED, current_calibration, retrieval_not_allowed
from .similar import safe_find as find_similar_cases

log = logging.getLogger(__name__)


_bank_lock = threading.Lock()
_trial_banks: dict[tuple[int, int], object] = {}


def trial_reference_bank(trial):
    """A retrieval bank from the trial's own cases with reference reports and images (leave-one-out at query
    time); None when the trial has fewer than two such cases (the bundled IU bank is used then)."""
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


#: Returned by :func:`_claim` for a draft another task is generating in its batch.
IN_BATCH = "in a batch"


def _claim(draft_id: int) -> Draft | str | None:
    with transaction.atomic():
        draft = (Draft.objects.select_for_update(of=("self",))  # the draft row only, not its case and trial
                 .select_related("case__trial", "model_version").get(pk=draft_id))
        if draft.status == Draft.Status.READY:
            return None
        now = timezone.now()
        leader = (draft.parameters or {}).get("batch_leader")
        if (draft.status == Draft.Status.RUNNING and leader not in (None, draft.pk) and draft.started_at
                and (now - draft.started_at).total_seconds() < serving.time_limit(draft.model_version).hard_s):
            return IN_BATCH  # another task generates it with its own; the stale sweep recovers a dead batch
        _mark_running(draft, now)
        draft.parameters = {}
        draft.save(update_fields=["status", "started_at", "attempts", "worker_host", "queue_wait_s", "parameters"])
        return draft


def _mark_running(draft: Draft, now) -> None:
    if draft.started_at is None:
        draft.queue_wait_s = (now - draft.queued_at).total_seconds()
    draft.status = Draft.Status.RUNNING
    draft.started_at = now
    draft.attempts += 1
    draft.worker_host = socket.gethostname()


def _fail(draft_id: int, message: str) -> None:
    with transaction.atomic():
        draft = Draft.objects.select_for_update().get(pk=draft_id)
        if draft.status == Draft.Status.READY:
            return
        draft.status = Draft.Status.FAILED
        draft.error = message[:4000]
        draft.finished_at = timezone.now()
        draft.save(update_fields=["status", "error", "finished_at"])


def _batch_settings(mv: ModelVersion) -> tuple[int, float]:
    """(largest batch, seconds to wait for companions): ``options.batch_max`` (default 8 for janus, 1 = off) and
    ``options.batch_window_ms`` (default 200) of the model version's generation_params."""
    if mv.backend != ModelVersion.Backend.JANUS:
        return 1, 0.0
    options = (mv.generation_params or {}).get("options") or {}
    return max(1, int(options.get("batch_max", 8))), max(0.0, float(options.get("batch_window_ms", 200)) / 1000.0)


def claim_companions(leader: Draft, limit: int, window_s: float) -> list[Draft]:
    """Claim up to ``limit`` other queued drafts of the leader's model version, waiting up to ``window_s`` for
    them (dynamic batching). Each is marked running with ``parameters.batch_leader``; its own task message, when
    it arrives, finds it running in this batch (or ready) and does nothing."""
    claimed: list[Draft] = []
    deadline = time.monotonic() + window_s
    while len(claimed) < limit:
        with transaction.atomic():
            rows = list(
                Draft.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("case__trial", "model_version")
                .filter(model_version=leader.model_version, status=Draft.Status.QUEUED)
                .exclude(pk=leader.pk)
                .order_by("queued_at", "pk")[: limit - len(claimed)]
            )
            now = timezone.now()
            for draft in rows:
                _mark_running(draft, now)
                draft.parameters = {"batch_leader": leader.pk}
                draft.save(update_fields=["status", "started_at", "attempts", "worker_host", "queue_wait_s",
                                          "parameters"])
            claimed += rows
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(0.05, remaining))
    return claimed


def _release(drafts: list[Draft], requeue: Callable[[int], bool] | None) -> None:
    """Companions of a batch that failed transiently go back to the queue (their messages may be gone) and are
    sent again with ``requeue`` (inference.tasks.send_draft_task; without one, `requeue_drafts` sends them)."""
    ids = [d.pk for d in drafts]
    if not ids:
        return
    with transaction.atomic():
        Draft.objects.filter(pk__in=ids, status=Draft.Status.RUNNING).update(status=Draft.Status.QUEUED, parameters={})
        if requeue is not None:
            for pk in ids:
                transaction.on_commit(lambda pk=pk: requeue(pk))


def generate_group(backend, requests: list) -> list:
    """One generate call for the group; on out-of-memory the batch is halved and each half tried once, then the
    drafts fail with the reason (inference/serving.py: retrying an out-of-memory batch unchanged fails again)."""
    def generate(reqs: list) -> list:
        if len(reqs) == 1:
            return [backend.generate(reqs[0].images, reqs[0].findings, reqs[0].context)]
        return backend.generate_batch(reqs)

    try:
        return serving.generate_halving_on_oom(generate, requests, free=_free_device_memory)[0]
    except serving.OutOfMemoryFailure as exc:
        raise PermanentDraftError(str(exc)) from exc


def _free_device_memory() -> None:
    try:
        # Lazy: heavy optional dependency (the demo installs no torch/transformers).
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _prepare(drafts: list[Draft]) -> list[tuple[Draft, list]]:
    """Each companion with its views; one whose images cannot be read fails alone."""
    ready = []
    for draft in drafts:
        try:
            ready.append((draft, case_views(draft.case)))
        except PermanentDraftError as exc:
            _fail(draft.pk, str(exc))
    return ready


def run_draft(task, draft_id: int, *, requeue: Callable[[int], bool] | None = None) -> str:
    """Generate one draft (and its batch companions). ``requeue`` sends a draft's task again; the task module
    passes its sender in (the runner sits below inference.tasks and does not import it)."""
    try:
        draft = _claim(draft_id)
    except Draft.DoesNotExist:
        return "missing"
    if draft is None:
        return "already ready"
    if isinstance(draft, str):
        return IN_BATCH
    case, mv = draft.case, draft.model_version
    findings = case.trial.finding_codes
    companions: list[tuple[Draft, list]] = []
    if retrieval_not_allowed(case.trial, mv):  # the setting may have been turned off after queueing
        _fail(draft_id, RETRIEVAL_NOT_ALLOWED)
        return "failed"
    try:
        limit = serving.time_limit(mv)
        views = case_views(case)
        backend, load_s = get_loaded_backend(mv, findings, case.trial)
        weights_digest = _check_weights_identity(mv, backend)
        generation = BackendConfig.from_dict(backend_config(mv, findings)).generation
        batch_max, window_s = _batch_settings(mv)
        if batch_max > 1:
            companions = _prepare(claim_companions(draft, batch_max - 1, window_s))
        group = [(draft, views), *companions]
        requests = [
            GenerationRequest(
                images=[im for _img, im in v], findings=d.case.trial.finding_codes,
                context={"seed": generation.seed, "exclude_ids": [d.case.code], "generation": generation},
            )
            for d, v in group
        ]
        results = generate_group(backend, requests)
    except PermanentDraftError as exc:
        for companion, _v in companions:
            _fail(companion.pk, str(exc))
        _fail(draft_id, str(exc))
        return "failed"
    except SoftTimeLimitExceeded:
        _release([c for c, _v in companions], requeue)
        _fail(draft_id, "Generation exceeded the task time limit.")
        return "failed"
    except Retry:
        raise
    except Exception as exc:  # transient (e.g. I/O): retry with backoff, then fail clearly
        _release([c for c, _v in companions], requeue)
        retries = getattr(task.request, "retries", 0) if task is not None else 0
        max_retries = getattr(task, "max_retries", 0) if task is not None else 0
        if task is not None and not task.request.is_eager and retries < max_retries:
            log.warning("Draft %s failed (%s); retrying", draft_id, exc)
            raise task.retry(exc=exc, countdown=min(60, 2 ** (retries + 1))) from exc
        _fail(draft_id, f"{type(exc).__name__}: {exc}")
        return "failed"
    record = serving.serving_record(task, limit, results)
    calibrations: dict[int, ExpertCalibration | None] = {}
    for (member, member_views), result in zip(group, results, strict=True):
        # A batch bypasses Backend.generate: grounding markup is parsed here too (a no-op when already done).
        ground_result(result, member_views[0][1].size, member.case.trial.finding_codes,
                      (mv.generation_params or {}).get("options") or {})
        checked = safe_assess(member.case, member_views)  # outside the row lock: it may fit the trial's reference
        near = find_similar_cases(member.case, member_views)  # issue 21 item 2: the reference library's nearest
        trial = member.case.trial
        if trial.pk not in calibrations:
            calibrations[trial.pk] = current_calibration(mv, trial) if result.probabilities else None
        _store(member.pk, result, member_views, load_s, weights_digest, mv, len(group), checked, record,
               calibration=calibrated(result.probabilities, calibrations[trial.pk]), similar_cases=near)
    return "ready"


def calibrated(probabilities, cal: ExpertCalibration | None) -> tuple[dict, dict | None]:
    """(calibrated probabilities, the record as the draft keeps it) of raw expert probabilities under ``cal``.
    The raw ones stay the draft's ``probabilities``: the expert sentence was built from them with the published
    operating points, which are defined on raw outputs (docs/calibration.md); readers are shown these."""
    if cal is None or not probabilities:
        return {}, None
    values = apply_calibration({k: float(v) for k, v in probabilities.items()}, cal.findings, cal.method)
    return values, {"id": cal.pk, "sha256": calibration_digest(cal.method, cal.findings), "method": cal.method,
                    "trial": cal.trial.code, "n_cases": cal.n_cases, "fitted_at": cal.fitted_at.isoformat(),
                    "findings": sorted(values)}


def _store(draft_id: int, result, views: list, load_s: float, weights_digest: str, mv: ModelVersion,
           batch_size: int, checked: tuple, record: dict, calibration: tuple[dict, dict | None] = ({}, None),
           similar_cases: list | None = None) -> None:
    with transaction.atomic():
        draft = Draft.objects.select_for_update(of=("self",)).select_related("case__trial").get(pk=draft_id)
        if draft.status == Draft.Status.READY:
            return
        draft.findings_text = result.findings
        draft.impression_text = result.impression
        draft.probabilities = {k: float(v) for k, v in result.probabilities.items()}
        draft.calibrated_probabilities, cal_record = calibration
        # Boxes are in pixels of the first view given to the model (frontal first): named by its public id.
        draft.boxes = [{**(b.__dict__ if hasattr(b, "__dict__") else b), "image": views[0][0].public_id}
                       for b in (result.boxes or [])]
        apply_ood(draft, *checked)
        draft.similar_cases = list(similar_cases or [])
        draft.neighbours = list(result.neighbours or [])
        draft.prompt = result.prompt or ""
        draft.parameters = {
            **result.to_dict().get("parameters", {}),
            # the views given to the model, in order (frontal first); the backend uses up to max_images of them
            "images": [{"public_id": img.public_id, "view_position": img.view_position} for img, _im in views],
            "batch_size": batch_size,
            # time limit, measured speed, and the versions of the code that made it (whatever the backend)
            "serving": record,
            # the expert calibration applied to the probabilities shown to readers (None: raw only)
            "calibration": cal_record,
        }
        draft.parameters["provenance"] = {
            **serving.runtime_provenance(), **draft.parameters.get("provenance", {}),
            "expert_calibration": {"id": cal_record["id"], "sha256": cal_record["sha256"]} if cal_record else None,
        }
        draft.seed = int(result.seed or 0)
        draft.load_s = load_s + float(result.load_s or 0.0)
        draft.generate_s = float(result.generate_s or 0.0)
        draft.status = Draft.Status.READY
        draft.error = ""
        draft.finished_at = timezone.now()
        draft.save()
        if weights_digest:  # first draft: the model version now names its weights (a later change is refused)
            ModelVersion.objects.filter(pk=mv.pk, weights_sha256="").update(weights_sha256=weights_digest)


def _check_weights_identity(mv: ModelVersion, backend) -> str:
    """One SHA-256 over the loaded weight files' hashes. A model version whose weights changed after its first
    draft is refused: drafts of one version must come from one model (a change makes a new version)."""
    files = getattr(backend, "weights_sha256", None) or {}
    if not files:
        return ""
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    if mv.weights_sha256 and mv.weights_sha256 != digest:
        raise PermanentDraftError(
            f"Model version {mv.name}: the weights at {mv.weights_path} changed since its first draft "
            f"(recorded {mv.weights_sha256[:12]}, now {digest[:12]}); register the new weights as a new model version."
        )
    return digest
