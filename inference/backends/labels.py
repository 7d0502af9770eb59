"""MeSH -> finding labels for the IU X-ray reports, written as data.

The IU reports carry ``<MeSH><major>`` terms such as ``Pleural Effusion/right/small`` or
``Cardiac Shadow/enlarged/mild`` (heading, then qualifiers separated by ``/``). A finding is labelled present
(1) when one of the report's *major* terms starts with one of the finding's patterns below (compared
case-insensitively, component by component, so ``Cardiac Shadow/enlarged`` matches
``Cardiac Shadow/enlarged/mild`` but not ``Cardiac Shadow``), and absent (0) otherwise. Terms under
``<automatic>`` are ignored (they are machine-extracted and include negated mentions).

Choices, following the CheXpert label hierarchy (Irvin et al., AAAI 2019), where *lung opacity* is the parent
of edema, consolidation, pneumonia, atelectasis and lung lesions:

- ``lung_opacity`` includes ``Opacity``, ``Infiltrate``, ``Airspace Disease``, ``Density/lung``,
  ``Consolidation``, ``Pneumonia``, ``Pulmonary Edema`` and ``Pulmonary Atelectasis``.
- ``consolidation`` is the explicit MeSH heading only (pneumonia is a clinical diagnosis, not a sign).
- ``pleural_effusion`` excludes ``Pericardial Effusion`` (a different heading, so prefix matching excludes it).
- ``cardiomegaly``: ``Cardiomegaly`` and ``Cardiac Shadow/enlarged``.
- ``support_devices`` (not one of the six; available to trials that want it): catheters, tubes, implanted
  devices, surgical instruments, stents, medical devices.

A bank may be given another mapping (same shape) as JSON: ``{"finding_code": ["MeSH/pattern", ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

MESH_FINDINGS: dict[str, tuple[str, ...]] = {
    "pleural_effusion": ("Pleural Effusion",),
    "pneumothorax": ("Pneumothorax", "Hydropneumothorax", "Hemopneumothorax"),
    "atelectasis": ("Pulmonary Atelectasis",),
    "consolidation": ("Consolidation",),
    "cardiomegaly": ("Cardiomegaly", "Cardiac Shadow/enlarged"),
    "lung_opacity": (
        "Opacity",
        "Infiltrate",
        "Airspace Disease",
        "Density/lung",
        "Consolidation",
        "Pneumonia",
        "Pulmonary Edema",
        "Pulmonary Atelectasis",
    ),
    "support_devices": (
        "Catheters, Indwelling",
        "Tube, Inserted",
        "Implanted Medical Device",
        "Surgical Instruments",
        "Medical Device",
        "Stents",
        "Pacemaker, Artificial",
    ),
}


def _split(term: str) -> list[str]:
    return [part.strip().lower() for part in term.split("/") if part.strip()]


def labels_from_mesh(
    major_terms: Iterable[str], mapping: Mapping[str, Iterable[str]] | None = None
) -> dict[str, int]:
    """0/1 label per finding code of ``mapping`` (default :data:`MESH_FINDINGS`) from a report's major terms."""
    mapping = MESH_FINDINGS if mapping is None else mapping
    terms = [_split(t) for t in major_terms]
    labels: dict[str, int] = {}
    for code, patterns in mapping.items():
        present = 0
        for pattern in patterns:
            pat = _split(pattern)
            if any(term[: len(pat)] == pat for term in terms):
                present = 1
                break
        labels[code] = present
    return labels


def load_mapping(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read a JSON mapping ``{"finding_code": ["MeSH/pattern", ...]}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{path}: expected an object of finding code -> list of MeSH patterns")
    return {str(k): tuple(str(p) for p in v) for k, v in data.items()}
