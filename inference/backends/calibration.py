"""Applying a stored expert-model calibration to a draft's probabilities (issue 16 items 3 and 5, issue 21 item 3).

Pure (no Django): the fit is ``analysis.stats.calibration.fit_platt`` (``manage.py calibrate_expert`` stores it as
``inference.ExpertCalibration``); inference may not import analysis, so the one line that applies it lives here
and a test checks it against ``PlattCalibrator.apply``.

- Platt scaling: ``p' = 1 / (1 + exp(-(a * logit(p) + b)))``, ``p`` clipped to ``[1e-12, 1 - 1e-12]`` first (as the
  fit does). Findings without a fit (the record has a ``note`` instead of ``a``/``b``) get no calibrated value.
- :func:`calibration_digest`: SHA-256 of the canonical JSON of the method and every fitted ``(a, b)``: what a
  draft records beside the record's id, so a draft's calibrated figures can be traced to exact parameters.

Which probabilities the published expert sentence uses (docs/calibration.md): the **raw** ones. torchxrayvision's
operating points (``op_norm``: each label's published operating point maps to 0.5) are defined on the network's
own outputs, and Janus-Pro-CXR was trained with the expert sentence built from them; a calibration fitted on one
trial's reference set is for the reader's eyes, not for the model's prompt.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

EPS = 1e-12


def platt(p: float, a: float, b: float) -> float:
    """One probability through Platt scaling (``analysis.stats.calibration.PlattCalibrator.apply``)."""
    q = min(max(float(p), EPS), 1.0 - EPS)
    z = a * math.log(q / (1.0 - q)) + b
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def fitted_parameters(findings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{code: {"a", "b"}}`` of the findings that have a fit (the others carry a note)."""
    return {str(code): {"a": float(fit["a"]), "b": float(fit["b"])}
            for code, fit in findings.items() if isinstance(fit, Mapping) and "a" in fit and "b" in fit}


def apply_calibration(probabilities: Mapping[str, float], findings: Mapping[str, Mapping[str, Any]],
                      method: str = "platt") -> dict[str, float]:
    """Calibrated probabilities of the findings that have both a raw probability and a fit."""
    if method != "platt":
        raise ValueError(f"unknown calibration method {method!r}")
    fits = fitted_parameters(findings)
    return {code: platt(p, fits[code]["a"], fits[code]["b"]) for code, p in probabilities.items() if code in fits}


def calibration_digest(method: str, findings: Mapping[str, Mapping[str, Any]]) -> str:
    """SHA-256 of ``{"method", "parameters": {code: {"a", "b"}}}`` as canonical JSON (sorted keys, repr floats)."""
    doc = {"method": method, "parameters": fitted_parameters(findings)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
