"""Writes for drafts: queueing (idempotent: one draft per case and model version)."""
from __future__ import annotations

import logging

from django.db import transaction

from trial.models import Case

from .models import Draft, ModelVersion

log = logging.getLogger(__name__)


def model_versions_for_trial(trial) -> list[ModelVersion]:
    ids = trial.arms.filter(is_ai=True, model_version__isnull=False).values_list("model_version", flat=True)
    return list(ModelVersion.objects.filter(pk__in=set(ids)))


def queue_drafts_for_case(case: Case) -> list[Draft]:
    """Drafts for every case, both arms (standalone accuracy is measured on all cases). Sent after commit."""
    drafts = []
    for mv in model_versions_for_trial(case.trial):
        draft, _ = Draft.objects.get_or_create(case=case, model_version=mv)
        drafts.append(draft)
        if draft.status == Draft.Status.QUEUED:
            transaction.on_commit(lambda pk=draft.pk: send_draft_task(pk))
    return drafts


def send_draft_task(draft_id: int) -> bool:
    """Send to the broker; if it is down the draft stays queued and `requeue_drafts` sends it later."""
    from .tasks import make_draft

    try:
        make_draft.apply_async(args=[draft_id], queue="gpu", retry=False)
        return True
    except Exception as exc:  # broker unreachable: enrolment has committed, the draft waits in 'queued'
        log.warning("Could not queue draft %s: %s", draft_id, exc)
        return False
