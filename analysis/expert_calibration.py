"""Fitting the expert model's calibration on a trial's reference-standard cases (issue 16 item 3).

Here, not in inference: the fit uses ``analysis.stats.calibration`` and inference may not import analysis
(docs/architecture.md); the fitted parameters are stored by ``inference.services.record_expert_calibration``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import InvalidInput
from inference.models import Draft, ExpertCalibration, ModelVersion
from inference.services import model_versions_for_trial, record_expert_calibration
from trial.blinding import require_not_blinded
from trial.models import Case, Trial

from .stats.calibration import MIN_PER_CLASS, cross_fitted, fit_platt, reliability

#: Fewest reference-standard cases with a ready draft before a calibration is fitted at all.
MIN_CASES = 20


def choose_model_version(trial: Trial, name: str | None) -> ModelVersion:
    """The named model version, else the one that drafts the trial's AI arms (refused when there are several)."""
    versions = model_versions_for_trial(trial)
    if name:
        mv = ModelVersion.objects.filter(name=name).first()
        if mv is None:
            raise InvalidInput(f"No model version named {name!r}.")
        return mv
    if len(versions) != 1:
        names = ", ".join(sorted(v.name for v in versions)) or "none"
        raise InvalidInput(f"Trial {trial.code} has {len(versions)} AI model versions ({names}): name one.")
    return versions[0]


def reference_pairs(trial: Trial, model_version: ModelVersion) -> tuple[list[str], dict[str, tuple[list, list]]]:
    """Per finding, the ready drafts' probabilities and the reference standard of the trial's cases (excluded
    cases left out; a case counts for a finding when it has both). Also the codes of the cases used."""
    drafts = (Draft.objects.filter(case__trial=trial, model_version=model_version, status=Draft.Status.READY)
              .exclude(case__status=Case.Status.EXCLUDED).select_related("case").order_by("case__code"))
    pairs: dict[str, tuple[list, list]] = {code: ([], []) for code in trial.finding_codes}
    used: set[str] = set()
    for d in drafts:
        probs, ref = d.probabilities or {}, d.case.reference_findings or {}
        for code, (p, y) in pairs.items():
            if probs.get(code) is not None and ref.get(code) is not None:
                p.append(float(probs[code]))
                y.append(int(ref[code]))
                used.add(d.case.code)
    return sorted(used), pairs


def _summary(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return reliability(p, y).to_dict()


def fit_finding(p: list[float], y: list[int]) -> dict[str, Any]:
    """Platt scaling of one finding (``analysis.stats.calibration.fit_platt``) with its reliability before and
    after on the fitted cases, and after out of fold; a note instead when a class has too few cases."""
    pa, ya = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    n_pos = int(ya.sum())
    if min(n_pos, ya.size - n_pos) < MIN_PER_CLASS:
        return {"note": f"needs at least {MIN_PER_CLASS} reference cases with and without the finding "
                        f"(has {n_pos} and {ya.size - n_pos})", "n": int(ya.size)}
    fit = fit_platt(pa, ya)
    return {"a": fit.a, "b": fit.b, "n": fit.n, "n_positive": n_pos, "converged": fit.converged,
            "before": _summary(pa, ya), "after": _summary(fit.apply(pa), ya),
            "after_cross_fitted": _summary(cross_fitted(pa, ya, "platt"), ya)}


def calibrate_expert(*, actor, trial: Trial, model_version: ModelVersion, min_cases: int = MIN_CASES
                     ) -> ExpertCalibration:
    """Fit and store the expert model's per-finding Platt scaling on ``trial``'s reference-standard cases."""
    if actor is not None:
        require_not_blinded(actor, trial)  # the fit shows the model's drafts against the reference standard
    used, pairs = reference_pairs(trial, model_version)
    if len(used) < min_cases:
        raise InvalidInput(
            f"Too few reference cases to calibrate {model_version.name} on trial {trial.code}: {len(used)} cases "
            f"have a ready draft with probabilities and a reference standard; at least {min_cases} are needed.")
    findings = {code: fit_finding(p, y) for code, (p, y) in pairs.items()}
    return record_expert_calibration(actor=actor, trial=trial, model_version=model_version, method="platt",
                                     n_cases=len(used), findings=findings)
