"""The out-of-distribution check of a draft's input, in the worker (issue 21 item 4; the checks themselves are the
pure :mod:`inference.backends.ood`).

The reference distribution of a trial is the weight-free embedding (:mod:`inference.backends.embedding`) of the
first (frontal) view of each of its reference cases: cases with a reference report and images, the same set the
retrieval baseline's trial bank uses (runner.trial_reference_bank). It is fitted once per process per reference set;
a case that is itself in the reference set is compared with the set without it (its fence is the full set's).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pydicom
from django.conf import settings
from django.db.models import Count

from inference.backends import ood
from inference.backends.embedding import embed_image
from trial.models import Case

from .case_views import PermanentDraftError, case_views
from .models import Draft, OodAction

log = logging.getLogger(__name__)

_lock = threading.Lock()
_references: dict[tuple, tuple[list[int], np.ndarray, ood.ReferenceDistribution | None]] = {}


def _patient_age(image) -> str:
    """PatientAge of the stored (de-identified) file: kept only when the trial retains patient characteristics."""
    path = Path(settings.MEDIA_ROOT) / image.dicom_file
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientAge"])
    except (OSError, ValueError, pydicom.errors.InvalidDicomError):
        return ""
    return str(ds.get("PatientAge", "") or "")


def view_facts(views: list) -> list[ood.ViewFacts]:
    return [ood.ViewFacts(flags=tuple(img.flags or ()), view_position=img.view_position or "", age=_patient_age(img))
            for img, _im in views]


def _reference(trial) -> tuple[list[int], np.ndarray, ood.ReferenceDistribution | None]:
    cases = list(Case.objects.filter(trial=trial).exclude(reference_report="")
                 .annotate(n_images=Count("images")).filter(n_images__gt=0).order_by("pk"))
    key = (trial.pk, tuple((c.pk, c.n_images) for c in cases))
    with _lock:
        if key not in _references:
            ids, rows = [], []
            for c in cases:
                try:
                    _img, first = case_views(c)[0]
                except PermanentDraftError:
                    continue
                ids.append(c.pk)
                rows.append(embed_image(first))
            x = np.stack(rows) if rows else np.zeros((0, 1))
            _references[key] = (ids, x, ood.fit_reference(x) if len(rows) else None)
        return _references[key]


def trial_reference(trial, case: Case) -> ood.ReferenceDistribution | None:
    """The trial's reference distribution to compare ``case`` with (without the case itself)."""
    ids, x, full = _reference(trial)
    if full is None or case.pk not in ids:
        return full
    # the full set's leave-one-out fence: one case changes it little, and refitting it costs a second
    return ood.fit_reference(np.delete(x, ids.index(case.pk), axis=0), fence=full.fence)


def assess_case(case: Case, views: list) -> ood.OodAssessment:
    """The case's assessment at its trial's threshold (``views``: runner.case_views output, frontal first)."""
    trial = case.trial
    images = [im for _img, im in views]
    return ood.assess(images, view_facts(views), reference=trial_reference(trial, case),
                      embedding=embed_image(images[0]), threshold=float(trial.ood_threshold))


def apply(draft: Draft, assessment: ood.OodAssessment | None, error: str = "") -> None:
    """Record the assessment on ``draft`` (not saved) and what the trial's setting does with it. A check that
    could not run marks the draft (the reader is warned) rather than failing it."""
    if assessment is None:
        draft.ood_score, draft.ood_reasons, draft.ood = None, ["check_failed"], {"error": error[:500]}
        draft.ood_action = OodAction.MARKED
        return
    draft.ood_score = assessment.score
    draft.ood_reasons = list(assessment.reasons)
    draft.ood = {**assessment.to_dict(), "threshold": float(draft.case.trial.ood_threshold)}
    draft.ood_action = (
        OodAction.NONE if not assessment.reasons
        else OodAction.WITHHELD if draft.case.trial.ood_action == "withhold" else OodAction.MARKED
    )


def safe_assess(case: Case, views: list) -> tuple[ood.OodAssessment | None, str]:
    try:
        return assess_case(case, views), ""
    except Exception as exc:  # noqa: BLE001 - a failed check must not cost the draft; it is marked instead
        log.exception("Out-of-distribution check of case %s failed", case.code)
        return None, f"{type(exc).__name__}: {exc}"


def warning_text(draft: Draft) -> str:
    """What the AI-arm reader is told about a marked or withheld draft ("" for one in distribution)."""
    if not draft.ood_action:
        return ""
    why = ood.describe(draft.ood_reasons) if draft.ood_reasons else "the input could not be checked"
    if draft.ood_action == OodAction.WITHHELD:
        return f"The AI draft is withheld: this input looks out of distribution for the model ({why})."
    return f"Caution: this input looks out of distribution for the model ({why}); the AI draft may be unreliable."
