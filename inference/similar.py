"""Similar cases of the trial's reference library, found in the inference worker when a draft is made (issue 21
item 2; the encoders and the ranking are the pure :mod:`inference.backends.similar`).

**The reference library** is the trial's cases flagged ``library`` (the reference CSV's ``library`` column at
import), with a reference report and images, never enrolled: trial.services.enrol_case refuses a library case, so
no library case is ever read or rated, and no case being read is ever shown as a similar case. (The OOD check's
"reference" is different: every trial case with a reference report, inference/ood.py; it may include cases being
read, which is fine for a distance but not for showing a report.)

**Why in the worker, stored with the draft** (``Draft.similar_cases``), not on demand in the web process: the real
encoder needs torch and local weights, which the inference worker has and the web process does not load; what the
reader was shown is recorded with the draft it came with (reproducible, auditable); and the read page pays nothing.
The library is fixed before enrolment (drafts are queued at enrolment), so stored neighbours do not go stale; a
library changed later applies to drafts made after it. Only when the trial's ``similar_cases_k`` is above 0.

The library's embeddings are computed once per process per (trial, encoder, library) and kept, as the OOD
reference is.
"""
from __future__ import annotations

import logging
import threading

import numpy as np
from django.db.models import Count

from inference.backends import similar
from trial.models import Case

from .case_views import PermanentDraftError, case_views

log = logging.getLogger(__name__)

_lock = threading.Lock()
_encoders: dict[tuple[str, str], similar.Encoder] = {}
_libraries: dict[tuple, tuple[list[int], np.ndarray]] = {}


def library_cases(trial):
    """The trial's reference library: flagged cases with a reference report and images, never enrolled."""
    return (Case.objects.filter(trial=trial, library=True, enrolled_at__isnull=True).exclude(reference_report="")
            .annotate(n_images=Count("images")).filter(n_images__gt=0).order_by("pk"))


def encoder_for(trial) -> similar.Encoder:
    key = (trial.similar_cases_encoder or "image", trial.similar_cases_weights or "")
    with _lock:
        if key not in _encoders:
            _encoders[key] = similar.load_encoder(*key)
        return _encoders[key]


def _library(trial, encoder: similar.Encoder) -> tuple[list[int], np.ndarray]:
    cases = list(library_cases(trial))
    key = (trial.pk, encoder.name, encoder.version, tuple((c.pk, c.n_images) for c in cases))
    with _lock:
        if key not in _libraries:
            ids, rows = [], []
            for c in cases:
                try:
                    _img, first = case_views(c)[0]  # the frontal view, as the draft's own input
                except PermanentDraftError:
                    continue
                ids.append(c.pk)
                rows.append(first)
            _libraries[key] = (ids, encoder.embed(rows) if rows else np.zeros((0, 1)))
        return _libraries[key]


def find_similar(case: Case, views: list) -> list[dict]:
    """The trial's ``similar_cases_k`` library cases most like ``case``'s first view (``views``: case_views
    output): [{"case_id", "score" (cosine similarity), "encoder"}], best first; [] when the trial shows none."""
    trial = case.trial
    if not trial.similar_cases_k or case.library:
        return []
    encoder = encoder_for(trial)
    ids, x = _library(trial, encoder)
    if not ids:
        return []
    query = encoder.embed([views[0][1]])[0]
    label = f"{encoder.name}:{encoder.version}"
    return [{"case_id": ids[i], "score": round(score, 4), "encoder": label}
            for i, score in similar.nearest(query, x, trial.similar_cases_k) if ids[i] != case.pk]


def safe_find(case: Case, views: list) -> list[dict]:
    """:func:`find_similar`; a failure (missing weights, unreadable library image) costs the similar cases, not the
    draft: logged, and the reader sees none."""
    try:
        return find_similar(case, views)
    except Exception:  # noqa: BLE001 - the draft must not fail for want of similar cases
        log.exception("Similar cases of case %s could not be found", case.code)
        return []
