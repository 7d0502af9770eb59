"""Test data for reading: case images (an 8-bit display PNG and a 16-bit full-range PNG under MEDIA_ROOT, plus the
imaging.Image row) and ready drafts. The import pipeline is not used here: these stand in for its output."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image as PILImage

from imaging.models import Image
from inference.models import Draft
from trial.models import Case

SAMPLE_PNGS = [
    Path(__file__).resolve().parent.parent / "fixtures" / "cxr-png" / "00000001_000.png",
]
FULL_SCALE = 16  # the 16-bit file holds 12 bits: display value * 16 plus a smooth ramp, so W/L has range to use


def _base_pixels(size: int) -> np.ndarray:
    for p in SAMPLE_PNGS:
        if p.is_file():
            with PILImage.open(p) as im:
                im = im.convert("L")
                if im.size != (size, size):
                    im = im.resize((size, size))
                return np.asarray(im, dtype=np.uint8)
    y, x = np.mgrid[0:size, 0:size]
    img = (x * 200 / size + 20).astype(np.float64)
    disc = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2
    img[disc] = 235
    return img.clip(0, 255).astype(np.uint8)


def write_pngs(case: Case, size: int = 256, name: str = "img") -> tuple[str, str, dict]:
    """Write the display PNG and the 16-bit PNG for a case; returns (display_rel, full_rel, display meta)."""
    base = _base_pixels(size)
    ramp = np.tile(np.linspace(0, FULL_SCALE - 1, size), (size, 1))
    full = (base.astype(np.float64) * FULL_SCALE + ramp).clip(0, 65535).astype(np.uint16)
    rel_dir = Path("renditions") / str(case.trial_id) / case.code
    out = Path(settings.MEDIA_ROOT) / rel_dir
    out.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(base, mode="L").save(out / f"{name}.png")
    lo, hi = int(full.min()), int(full.max())
    # The import's conventions (trial/imaging/rendition.py): stored = modality - min; window in modality units.
    full = (full - lo).astype(np.uint16)
    meta = {"width": size, "height": size, "invert": False, "min": lo, "max": hi,
            "window_center": (lo + hi) / 2, "window_width": hi - lo,
            "full_range": {"encoding": "png-gray16", "slope": 1, "intercept": lo}}
    PILImage.fromarray(full).save(out / f"{name}-16.png")
    return str(rel_dir / f"{name}.png"), str(rel_dir / f"{name}-16.png"), meta


def add_image(case: Case, size: int = 256, name: str = "img") -> Image:
    display_rel, full_rel, meta = write_pngs(case, size, name)
    digest = hashlib.sha256(f"{case.pk}|{name}".encode()).hexdigest()
    return Image.objects.create(
        case=case, source_sha256=digest, sha256=digest, dicom_file=f"dicom/{case.code}/{name}.dcm",
        display_file=display_rel, full_range_file=full_rel, sop_instance_uid=f"2.25.{int(digest[:20], 16)}",
        modality="DX", view_position="PA", rows=size, columns=size, bits_allocated=16, bits_stored=12,
        photometric_interpretation="MONOCHROME2", display=meta,
    )


DRAFT_FINDINGS = "Zebra-striped sentinel opacity in the left apex. Heart size within normal limits."
DRAFT_IMPRESSION = "Sentinel apical opacity, likely benign."


def ready_draft(case: Case, model_version, *, findings_text: str = DRAFT_FINDINGS,
                impression_text: str = DRAFT_IMPRESSION, probabilities: dict | None = None) -> Draft:
    """Mark the case's draft ready (enrolment queued it; update it rather than make a duplicate)."""
    if probabilities is None:
        probabilities = {
            "pleural_effusion": 0.8731, "pneumothorax": 0.0417, "atelectasis": 0.6123,
            "consolidation": 0.2291, "cardiomegaly": 0.1379, "lung_opacity": 0.9113,
        }
    draft, _ = Draft.objects.get_or_create(case=case, model_version=model_version)
    draft.status = Draft.Status.READY
    draft.findings_text = findings_text
    draft.impression_text = impression_text
    draft.probabilities = probabilities
    draft.save()
    return draft


def with_images_and_drafts(t: dict, cases: list[Case], size: int = 256, drafts: bool = True) -> None:
    """Give every case an image and (when `drafts`) a ready draft of the trial's AI arm model."""
    mv = t["arms"]["ai_assisted"].model_version
    for c in cases:
        add_image(c, size)
        if drafts and mv is not None:
            ready_draft(c, mv)


def reads_of(membership, **filters):
    """A reader's reads in worklist order."""
    from reading.models import Read

    return Read.objects.filter(reader=membership, **filters).select_related("case", "arm").order_by("order_key")


def reader_in(t: dict, arm_code: str, center_index: int = 0):
    """The (first) reader allocated to an arm at a center of a make_trial() trial."""
    arm = t["arms"][arm_code]
    center = t["centers"][center_index]
    return next(m for m in t["readers"] if m.arm_id == arm.pk and m.center_id == center.pk)
