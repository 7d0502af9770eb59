"""Reads (one reader, one case, one arm) (docs/design.md sections 2 and 4)."""
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from trial.models import history


def opaque_id() -> str:
    # Random, so ids neither sort by arm nor by creation order.
    return secrets.token_urlsafe(12)


@history()  # row history by triggers (issue 18 item 1): raw SQL and bulk writes leave old/new values too
class Read(models.Model):
    class Status(models.TextChoices):
        TODO = "todo", "To do"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"

    public_id = models.CharField(max_length=24, unique=True, default=opaque_id, editable=False)
    case = models.ForeignKey("trial.Case", on_delete=models.PROTECT, related_name="reads")
    arm = models.ForeignKey("trial.Arm", on_delete=models.PROTECT, related_name="reads")
    reader = models.ForeignKey(
        "trial.Membership", null=True, blank=True, on_delete=models.PROTECT, related_name="reads",
        help_text="Null until a reader of the arm at the case's center is enrolled",
    )
    session = models.PositiveSmallIntegerField(default=1, help_text="Crossover: 1st or 2nd read of the case")
    after_read = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Crossover: held back until this read is submitted and the washout has passed",
    )
    order_key = models.BigIntegerField(default=0, help_text="Worklist order, shuffled per reader")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.TODO)
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0.0)
    # The report (autosaved while in progress, final once submitted)
    findings_text = models.TextField(blank=True)
    impression_text = models.TextField(blank=True)
    finding_marks = models.JSONField(default=dict, blank=True, help_text="{code: {present: bool, confidence: 1-5}}")
    prefilled_marks = models.JSONField(
        default=dict, blank=True,
        help_text="AI arm: the present/absent choices the draft pre-filled at first open, {code: bool}; empty if none")
    autosaved_at = models.DateTimeField(null=True, blank=True)
    # AI arm: the draft shown, and how much the reader changed it
    draft = models.ForeignKey("inference.Draft", null=True, blank=True, on_delete=models.PROTECT, related_name="reads")
    draft_edit_distance = models.FloatField(null=True, blank=True)
    flipped_findings = models.JSONField(default=list, blank=True)
    # AI arm: the reader's decision on each AI box shown (issue 21 item 1), {box id: "accepted" | "rejected"};
    # a box left out was not reviewed. Box ids are the draft's (reading.selectors.shown_boxes).
    box_reviews = models.JSONField(
        default=dict, blank=True,
        help_text="AI arm: {box id: accepted/rejected} for the boxes of the draft shown; empty if none reviewed")

    class Meta:
        ordering = ["order_key"]
        constraints = [
            models.UniqueConstraint(fields=["case", "arm", "reader"], name="uniq_read_case_arm_reader"),
        ]
        indexes = [models.Index(fields=["reader", "status"])]

    def __str__(self) -> str:
        return f"Read {self.public_id}"

    @property
    def wall_seconds(self) -> float | None:
        if self.opened_at and self.submitted_at:
            return (self.submitted_at - self.opened_at).total_seconds()
        return None

    @property
    def is_submitted(self) -> bool:
        return self.submitted_at is not None


@history()
class ReadAmendment(models.Model):
    """A change to a submitted read (issue 18 item 2). The read keeps its first submission unchanged, which is what
    the analysis counts by default (docs/primary_analysis.md); each amendment stores the version before and after,
    who made it, when and why. ``number`` counts the read's amendments from 1."""

    read = models.ForeignKey(Read, on_delete=models.PROTECT, related_name="amendments")
    number = models.PositiveSmallIntegerField()
    amended_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amended_as = models.CharField(max_length=16, help_text="The role the change was made in: reader or coordinator")
    reason = models.TextField()
    previous = models.JSONField(help_text="The report before: {findings_text, impression_text, finding_marks}")
    amended = models.JSONField(help_text="The report after: {findings_text, impression_text, finding_marks}")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["read", "number"]
        constraints = [models.UniqueConstraint(fields=["read", "number"], name="uniq_read_amendment_number")]

    def __str__(self) -> str:
        return f"Amendment {self.number} of {self.read}"
