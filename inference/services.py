"""Writes for drafts: queueing (idempotent: one draft per case and model version)."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from trial import audit
from trial.models import Arm, Case

from .models import ArmModelVersion, Draft, ModelVersion
from .selectors import default_model_version

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
    from .tasks import make_draft

    app = make_draft.app
    try:
        if app.conf.task_always_eager:
            make_draft.apply_async(args=[draft_id], queue="gpu", retry=False)
        else:
            with app.connection_for_write(transport_options=SEND_TRANSPORT_OPTIONS) as conn:
                make_draft.apply_async(args=[draft_id], queue="gpu", retry=False, connection=conn)
        return True
    except Exception as exc:  # broker unreachable: enrolment has committed, the draft waits in 'queued'
        log.warning("Could not queue draft %s: %s", draft_id, exc)
        return False


@transaction.atomic
def retry_draft(actor, draft: Draft) -> Draft:
    """A coordinator re-queues a failed draft (same row: one draft per case and model version)."""
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


def requeue_stale_drafts(older_than_s: float = 600.0, *, running_older_than_s: float | None = None) -> int:
    """Re-send drafts still queued after `older_than_s` (e.g. the broker was down at enrolment) and, with
    `running_older_than_s`, drafts left RUNNING longer than that (their worker died and the message was lost, e.g.
    the whole host went away): those go back to QUEUED first. Idempotent: the task itself skips drafts that are
    already ready, and a late finisher of the old attempt finds the draft ready and writes nothing."""
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
    cutoff = now - timedelta(seconds=older_than_s)
    ids = set(Draft.objects.filter(status=Draft.Status.QUEUED, queued_at__lte=cutoff).values_list("pk", flat=True))
    return sum(send_draft_task(pk) for pk in sorted(ids | set(stale)))
