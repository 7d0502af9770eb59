"""A trial's import settings (chest checks and de-identification options), stored in Trial.import_settings.

Plain data with defaults, so the trial app validates them without knowing how import uses them
(docs/design.md section 4; issue 14 parts 3 and 4). Keys not given take the defaults below.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

VIEWS = ("PA", "AP", "LL", "RL", "LATERAL", "LAT")


@dataclass(frozen=True)
class ImportSettings:
    #: Body Part Examined values accepted; any other value is refused (body_part_not_allowed).
    allowed_body_parts: tuple[str, ...] = ("CHEST",)
    #: An empty/absent Body Part Examined is accepted with the flag ``body_part_empty``; else refused.
    allow_empty_body_part: bool = True
    #: View Position values accepted; any other value is refused (view_not_allowed).
    allowed_views: tuple[str, ...] = ("PA", "AP", "LL", "LATERAL")
    #: An empty/absent View Position is accepted with the flag ``view_empty``; else refused.
    allow_empty_view: bool = True
    #: Refuse FOR PROCESSING images (Presentation Intent Type, or the DX For Processing SOP class).
    presentation_only: bool = True
    #: Pixel spacing (mm) outside this range, or absent, is flagged.
    pixel_spacing_mm: tuple[float, float] = (0.05, 1.0)
    #: CR/DX images without Burned In Annotation also put their case in "needs review".
    review_when_burned_in_absent: bool = False
    #: PS3.15 options applied (recorded in DeidentificationMethodCodeSequence).
    clean_descriptors: bool = True
    clean_graphics: bool = True
    #: The Retain Patient Characteristics option: the de-identified file keeps Patient's Age and Sex (and size,
    #: weight...), which the read page then shows; off by default (the basic profile removes age, empties sex).
    keep_patient_characteristics: bool = False

    def as_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def parse_import_settings(raw: dict[str, Any] | None) -> ImportSettings:
    """Settings from the stored JSON; raises ValueError naming the first bad key."""
    raw = dict(raw or {})
    known = {f.name: f for f in fields(ImportSettings)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"Unknown import settings: {', '.join(sorted(unknown))}.")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        default = getattr(ImportSettings, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false.")
            values[key] = value
        elif key == "pixel_spacing_mm":
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError) as exc:
                raise ValueError("pixel_spacing_mm must be [min, max] in mm.") from exc
            if not 0 < lo < hi:
                raise ValueError("pixel_spacing_mm must satisfy 0 < min < max.")
            values[key] = (lo, hi)
        else:
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError(f"{key} must be a list of codes.")
            values[key] = tuple(v.strip().upper() for v in value)
    if "allowed_views" in values and not set(values["allowed_views"]) <= set(VIEWS):
        raise ValueError(f"allowed_views must be among {', '.join(VIEWS)}.")
    return ImportSettings(**values)
