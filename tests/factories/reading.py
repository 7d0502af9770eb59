"""Test data for reading: cases with images and ready drafts, and finding a reader's reads."""
from __future__ import annotations

from inference.models import Draft
from inference.selectors import arm_model_version
from tests.factories.imaging import add_image
from trial.models import Case

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
    mv = arm_model_version(t["arms"]["ai_assisted"])
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
