"""Writes for drafts: queueing (idempotent: one draft per case and model version)."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from trial.models import Case

from .models import Draft, ModelVersion

log = logging.getLogger(__name__)


def model_versions_for_trial(trial) -> list[ModelVersion]:
    ids = trial.arms.filter(is_ai=True, model_version__isnull=False).values_list("model_version", flat=True)
    return list(ModelVersion.objects.filter(pk__in=set(ids)))


RETRIEVAL_NOT_ALLOWED = (
    "Not drafted: the retrieval baseline repeats public report text that an expert could look up, which would "
    "unblind the rating, and this trial does not allow it (trial setting allow_retrieval_baseline, for demos). "
    "Give the AI arm a real model version."
)


def retrieval_not_allowed(trial, model_version: ModelVersion) -> bool:
    """True when ``model_version`` is the retrieval baseline and ``trial`` has not opted in to it
    (docs/design.md section 6)."""
    return model_version.backend == ModelVersion.Backend.RETRIEVAL and not trial.allow_retrieval_baseline


def queue_drafts_for_case(case: Case) -> list[Draft]:
    """Drafts for every case, both arms (standalone accuracy is measured on all cases). Sent after commit.
    A draft the trial may not make (the retrieval baseline without the trial's consent) is recorded as failed,
    with the reason, and not sent."""
    drafts = []
    for mv in model_versions_for_trial(case.trial):
        draft, _ = Draft.objects.get_or_create(case=case, model_version=mv)
        drafts.append(draft)
        if draft.status == Draft.Status.QUEUED and retrieval_not_allowed(case.trial, mv):
            draft.status, draft.error, draft.finished_at = Draft.Status.FAILED, RETRIEVAL_NOT_ALLOWED, timezone.now()
            draft.save(update_fields=["status", "error", "finished_at"])
            log.warning("Case %s: %s", case.code, RETRIEVAL_NOT_ALLOWED)
        elif draft.status == Draft.Status.QUEUED:
            transaction.on_commit(lambda pk=draft.pk: send_draft_task(pk))
    return drafts


# Sending a draft must fail fast when the broker is down: it runs after the enrolment's commit, inside the
# coordinator's request. kombu would otherwise retry the connection for broker_connection_timeout plus its
# back-off sleeps (about 6 s per draft, measured). One attempt, a short connect timeout, no publish retry; the
# draft stays 'queued' and `manage.py requeue_drafts` sends it once the broker is back.
SEND_TRANSPORT_OPTIONS = {"max_retries": 0, "socket_connect_timeout": 2, "socket_timeout": 5}


def send_draft_task(draft_id: int) -> bool:
    """Send to the broker; if it is down the draft stays queued and `requeue_drafts` sends it later."""
    from .serving import time_limit
    from .tasks import make_draft

    app = make_draft.app
    try:
        mv = ModelVersion.objects.get(drafts__pk=draft_id)
    except ModelVersion.DoesNotExist:
        return False
    limit = time_limit(mv)  # from max_new_tokens and the measured speed (inference/serving.py)
    options = {"queue": "gpu", "retry": False, "soft_time_limit": limit.soft_s, "time_limit": limit.hard_s}
    try:
        if app.conf.task_always_eager:
            make_draft.apply_async(args=[draft_id], **options)
        else:
            with app.connection_for_write(transport_options=SEND_TRANSPORT_OPTIONS) as conn:
                make_draft.apply_async(args=[draft_id], connection=conn, **options)
        return True
    except Exception as exc:  # broker unreachable: enrolment has committed, the draft waits in 'queued'
        log.warning("Could not queue draft %s: %s", draft_id, exc)
        return False


@transaction.atomic
def retry_draft(actor, draft: Draft) -> Draft:
    """A coordinator re-queues a failed draft (same row: one draft per case and model version)."""
    from trial import audit
    from trial.services import ensure_coordinator, ensure_writable

    trial = draft.case.trial
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    draft = Draft.objects.select_for_update().select_related("model_version").get(pk=draft.pk)
    if retrieval_not_allowed(trial, draft.model_version):
        from core.errors import Conflict

        raise Conflict(RETRIEVAL_NOT_ALLOWED)
    if draft.status != Draft.Status.FAILED:
        from core.errors import Conflict

        raise Conflict(f"Only failed drafts can be retried (this one is {draft.status}).")
    before = {"status": draft.status, "error": draft.error}
    draft.status = Draft.Status.QUEUED
    draft.error = ""
    draft.save(update_fields=["status", "error"])
    audit.record(actor=actor, trial=trial, action="draft:retry", obj=draft, before=before,
                 after={"status": draft.status})
    transaction.on_commit(lambda: send_draft_task(draft.pk))
    return draft


def requeue_stale_drafts(
    older_than_s: float = 600.0, *, running_older_than_s: float | None = None, running_past_limit: bool = False,
) -> int:
    """Re-send drafts still queued after `older_than_s` (e.g. the broker was down at enrolment) and, with
    `running_older_than_s`, drafts left RUNNING longer than that (their worker died and the message was lost, e.g.
    the whole host went away): those go back to QUEUED first. With `running_past_limit`, a RUNNING draft is stale
    once past its model version's hard time limit (inference/serving.py, the limit its task is sent with).
    Idempotent: the task itself skips drafts that are already ready, and a late finisher of the old attempt finds
    the draft ready and writes nothing."""
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    if running_older_than_s is not None:
        with transaction.atomic():
            stale = list(
                Draft.objects.select_for_update(skip_locked=True)
                .filter(status=Draft.Status.RUNNING, started_at__lte=now - timedelta(seconds=running_older_than_s))
                .values_list("pk", flat=True)
            )
            Draft.objects.filter(pk__in=stale).update(
                status=Draft.Status.QUEUED, error=f"re-queued: still running after {running_older_than_s:.0f} s"
            )
    else:
        stale = []
    if running_past_limit:
        stale += _requeue_running_past_limit(now)
    cutoff = now - timedelta(seconds=older_than_s)
    ids = set(Draft.objects.filter(status=Draft.Status.QUEUED, queued_at__lte=cutoff).values_list("pk", flat=True))
    return sum(send_draft_task(pk) for pk in sorted(ids | set(stale)))


def _requeue_running_past_limit(now) -> list[int]:
    """RUNNING drafts past their model version's hard time limit go back to QUEUED (one transaction)."""
    from datetime import timedelta

    from .serving import time_limit

    requeued: list[int] = []
    with transaction.atomic():
        running = (Draft.objects.select_for_update(skip_locked=True, of=("self",)).select_related("model_version")
                   .filter(status=Draft.Status.RUNNING, started_at__isnull=False))
        limits: dict[int, float] = {}
        for draft in running:
            mv = draft.model_version
            if mv.pk not in limits:
                limits[mv.pk] = time_limit(mv).hard_s
            if draft.started_at <= now - timedelta(seconds=limits[mv.pk]):
                requeued.append(draft.pk)
                Draft.objects.filter(pk=draft.pk).update(
                    status=Draft.Status.QUEUED,
                    error=f"re-queued: still running after its time limit of {limits[mv.pk]:.0f} s",
                )
    return requeued


# Model versions -------------------------------------------------------------------------------------------------

#: What decides a model version's drafts. Fixed once it has a draft: drafts of one version come from one model,
#: prompt and decoding (docs/janus.md); a change makes a new version (:func:`new_model_version_from`).
IDENTITY_FIELDS = ("name", "backend", "weights_path", "weights_sha256", "generation_params", "prompt_template")
#: May change at any time: whether new trials offer it and workers preload it.
MUTABLE_FIELDS = ("active",)


def model_version_is_frozen(model_version: ModelVersion) -> bool:
    return Draft.objects.filter(model_version=model_version).exists()


def _check_fields(changes: dict) -> None:
    from core.errors import InvalidInput

    unknown = sorted(set(changes) - set(IDENTITY_FIELDS) - set(MUTABLE_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown model version field(s): {', '.join(unknown)}.")


@transaction.atomic
def register_model_version(*, name: str, backend: str, weights_path: str = "", generation_params: dict | None = None,
                           prompt_template: str = "", active: bool = True) -> ModelVersion:
    from core.errors import Conflict, InvalidInput

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
    from core.errors import Conflict

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
    from core.errors import Conflict

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
