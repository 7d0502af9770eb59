"""Writes for drafts: queueing (idempotent: one draft per case and model version)."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput
from trial import audit
from trial.models import Arm, Case, Trial
from trial.services import ensure_coordinator, ensure_writable

from .models import ArenaModelVersion, ArmModelVersion, Draft, ExpertCalibration, ModelVersion
from .selectors import RETRIEVAL_NOT_ALLOWED, arena_model_versions, default_model_version, retrieval_not_allowed
from .tasks import requeue_stale_drafts, send_draft_task  # noqa: F401 - re-exported (requeue_drafts)

log = logging.getLogger(__name__)


def model_versions_for_trial(trial) -> list[ModelVersion]:
    ids = ArmModelVersion.objects.filter(arm__trial=trial, arm__is_ai=True).values_list("model_version", flat=True)
    return list(ModelVersion.objects.filter(pk__in=set(ids)))


def assign_arm_model_version(*, actor, arm: Arm, model_version: ModelVersion | None) -> ArmModelVersion:
    """Record which model version drafts an AI arm (the configured default when none is named). Runs inside
    trial.services.add_arm's transaction (signal trial.signals.ai_arm_added), so a refusal leaves no arm."""
    if model_version is None:
        model_version = default_model_version()
    assignment = ArmModelVersion.objects.create(arm=arm, model_version=model_version)
    audit.record(actor=actor, trial=arm.trial, action="create", obj=assignment, after=audit.snapshot(assignment))
    return assignment


def ai_arm_added_receiver(sender, *, arm: Arm, model_version: ModelVersion | None, actor, **kwargs) -> ArmModelVersion:
    """trial.signals.ai_arm_added."""
    return assign_arm_model_version(actor=actor, arm=arm, model_version=model_version)


def ai_arm_removed_receiver(sender, *, arm: Arm, actor, reason: str, **kwargs) -> None:
    """trial.signals.ai_arm_removed: the arm goes during setup (trial.services.remove_arm, same transaction), so
    its model-version record goes first (it protects the arm row)."""
    assignment = ArmModelVersion.objects.filter(arm=arm).first()
    if assignment is None:
        return
    before = audit.snapshot(assignment)
    with audit.history_context(actor=actor, reason=reason):
        assignment.delete()
    audit.record(actor=actor, trial=arm.trial, action="delete", object_type="inference.ArmModelVersion",
                 object_id=str(arm.pk), before=before, reason=reason)


def queue_drafts_for_case(case: Case) -> list[Draft]:
    """Drafts for every case, every AI arm's version and every version a coordinator added to the standalone arena
    (standalone accuracy is measured on all cases; the arena compares the versions' drafts). Sent after commit."""
    versions = {mv.pk: mv for mv in model_versions_for_trial(case.trial)}
    if ArenaModelVersion.objects.filter(trial=case.trial).exists():
        versions.update({mv.pk: mv for mv in arena_model_versions(case.trial)})
    return _queue_drafts(case, list(versions.values()))


def _queue_drafts(case: Case, versions: list[ModelVersion]) -> list[Draft]:
    """One draft per case and version (idempotent). A draft the trial may not make (the retrieval baseline without
    the trial's consent) is recorded as failed, with the reason, and not sent."""
    drafts = []
    for mv in versions:
        draft, _ = Draft.objects.get_or_create(case=case, model_version=mv)
        drafts.append(draft)
        if draft.status == Draft.Status.QUEUED and retrieval_not_allowed(case.trial, mv):
            draft.status, draft.error, draft.finished_at = Draft.Status.FAILED, RETRIEVAL_NOT_ALLOWED, timezone.now()
            draft.save(update_fields=["status", "error", "finished_at"])
            log.warning("Case %s: %s", case.code, RETRIEVAL_NOT_ALLOWED)
        elif draft.status == Draft.Status.QUEUED:
            transaction.on_commit(lambda pk=draft.pk: send_draft_task(pk))
    return drafts


@transaction.atomic
def set_arena_model_versions(*, actor, trial: Trial, model_versions: list[ModelVersion]) -> list[ModelVersion]:
    """A coordinator sets which model versions take part in the trial's standalone arena (issue 20 item 1): e.g. the
    arms' versions plus another registered one. At least two. Drafts of the versions are queued for every enrolled
    case of the trial that lacks one, through the ordinary draft path (:func:`queue_drafts_for_case`'s rules); cases
    enrolled later get them at enrolment. Audited with the names before and after. Returns the versions, by name."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    chosen = {mv.pk: mv for mv in model_versions}
    if len(chosen) < 2:
        raise InvalidInput("An arena compares at least two model versions: choose two or more.")
    trial = Trial.objects.select_for_update(no_key=True).get(pk=trial.pk)
    before = sorted(ArenaModelVersion.objects.filter(trial=trial).values_list("model_version__name", flat=True))
    ArenaModelVersion.objects.filter(trial=trial).exclude(model_version__in=list(chosen)).delete()
    for mv in chosen.values():
        ArenaModelVersion.objects.get_or_create(trial=trial, model_version=mv)
    cases = Case.objects.filter(trial=trial, enrolled_at__isnull=False, library=False).exclude(
        status=Case.Status.EXCLUDED).order_by("pk")
    for case in cases:
        _queue_drafts(case, list(chosen.values()))
    # Audit last (the chain head's row lock), as enrolment does after its drafts (docs/architecture.md, lock order).
    after = sorted(mv.name for mv in chosen.values())
    audit.record(actor=actor, trial=trial, action="arena:versions", object_type="inference.ArenaModelVersion",
                 object_id=str(trial.pk), before={"model_versions": before}, after={"model_versions": after})
    return sorted(chosen.values(), key=lambda mv: mv.name)


@transaction.atomic
def retry_draft(actor, draft: Draft) -> Draft:
    """A coordinator re-queues a failed draft (same row: one draft per case and model version)."""
    trial = draft.case.trial
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    draft = Draft.objects.select_for_update().select_related("model_version").get(pk=draft.pk)
    if retrieval_not_allowed(trial, draft.model_version):
        raise Conflict(RETRIEVAL_NOT_ALLOWED)
    if draft.status != Draft.Status.FAILED:
        raise Conflict(f"Only failed drafts can be retried (this one is {draft.status}).")
    before = {"status": draft.status, "error": draft.error}
    draft.status = Draft.Status.QUEUED
    draft.error = ""
    draft.save(update_fields=["status", "error"])
    audit.record(actor=actor, trial=trial, action="draft:retry", obj=draft, before=before,
                 after={"status": draft.status})
    transaction.on_commit(lambda: send_draft_task(draft.pk))
    return draft


# Model versions -------------------------------------------------------------------------------------------------

#: What decides a model version's drafts. Fixed once it has a draft: drafts of one version come from one model,
#: prompt and decoding (docs/janus.md); a change makes a new version (:func:`new_model_version_from`).
IDENTITY_FIELDS = ("name", "backend", "weights_path", "weights_sha256", "generation_params", "prompt_template")
#: May change at any time: whether new trials offer it and workers preload it.
MUTABLE_FIELDS = ("active",)


def model_version_is_frozen(model_version: ModelVersion) -> bool:
    return Draft.objects.filter(model_version=model_version).exists()


def _check_fields(changes: dict) -> None:
    unknown = sorted(set(changes) - set(IDENTITY_FIELDS) - set(MUTABLE_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown model version field(s): {', '.join(unknown)}.")


@transaction.atomic
def register_model_version(*, name: str, backend: str, weights_path: str = "", generation_params: dict | None = None,
                           prompt_template: str = "", active: bool = True) -> ModelVersion:
    if backend not in ModelVersion.Backend.values:
        raise InvalidInput(f"Unknown backend {backend!r} (one of {', '.join(ModelVersion.Backend.values)}).")
    if ModelVersion.objects.filter(name=name).exists():
        raise Conflict(f"A model version named {name!r} exists; give the new one its own name.")
    return ModelVersion.objects.create(name=name, backend=backend, weights_path=weights_path,
                                       generation_params=generation_params or {}, prompt_template=prompt_template,
                                       active=active)


@transaction.atomic
def update_model_version(*, model_version: ModelVersion, **changes) -> ModelVersion:
    """Change a model version. Once it has a draft only ``active`` may change; anything else is refused with the
    way out (a new version)."""
    _check_fields(changes)
    mv = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    changed = sorted(f for f in IDENTITY_FIELDS if f in changes and changes[f] != getattr(mv, f))
    if changed and model_version_is_frozen(mv):
        raise Conflict(
            f"Model version {mv.name} has drafts, so its {', '.join(changed)} cannot change: make a new version "
            f"(manage.py new_model_version {mv.name} NEW_NAME ...)."
        )
    for field, value in changes.items():
        setattr(mv, field, value)
    mv.save()
    log.info("Model version %s changed: %s", mv.name, ", ".join(sorted(changes)))
    return mv


@transaction.atomic
def new_model_version_from(*, source: ModelVersion, name: str, **changes) -> ModelVersion:
    """A new version: ``source``'s backend, weights, generation parameters and prompt template with ``changes``
    applied. The pinned weights hash is kept only while the weights path is the same (the first draft of the new
    version pins its own otherwise); ``generation_params`` given here replace the source's whole."""
    _check_fields(changes)
    changes.pop("name", None)
    if ModelVersion.objects.filter(name=name).exists():
        raise Conflict(f"A model version named {name!r} exists; give the new one its own name.")
    fields = {f: getattr(source, f) for f in IDENTITY_FIELDS if f != "name"}
    fields["active"] = source.active
    fields.update(changes)
    if "weights_sha256" not in changes and fields["weights_path"] != source.weights_path:
        fields["weights_sha256"] = ""
    mv = ModelVersion.objects.create(name=name, **fields)
    log.info("Model version %s made from %s", mv.name, source.name)
    return mv


# Expert calibration ---------------------------------------------------------------------------------------------


@transaction.atomic
def record_expert_calibration(*, actor, trial, model_version: ModelVersion, method: str, n_cases: int,
                              findings: dict) -> ExpertCalibration:
    """Store a calibration fitted on ``trial``'s reference-standard cases (the fit is analysis's:
    ``manage.py calibrate_expert``; inference only keeps it, beside the model version it does not change)."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    if method not in ExpertCalibration.Method.values:
        raise InvalidInput(f"Unknown calibration method {method!r}.")
    if not any("a" in fit for fit in findings.values()):
        raise InvalidInput("No finding could be calibrated: nothing stored.")
    cal = ExpertCalibration.objects.create(model_version=model_version, trial=trial, method=method, n_cases=n_cases,
                                           findings=findings)
    fitted = {code: {"a": fit["a"], "b": fit["b"], "n": fit["n"]} for code, fit in findings.items() if "a" in fit}
    audit.record(actor=actor, trial=trial, action="expert:calibrate", obj=cal,
                 after={"model_version": model_version.name, "method": method, "n_cases": n_cases,
                        "fitted": fitted, "skipped": sorted(set(findings) - set(fitted))})
    log.info("Model version %s calibrated on trial %s (%d cases)", model_version.name, trial.code, n_cases)
    return cal
