"""Expert ratings: one expert's blinded judgement of a case's pair of reports (docs/design.md sections 2 and 4)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from reading.models import Read, opaque_id
from trial.models import history


@history()  # row history by triggers (issue 18 item 1)
class Rating(models.Model):
    """One expert's blinded judgement of a case's reports, shown as A and B in an order drawn per rating."""

    class Status(models.TextChoices):
        TODO = "todo", "To do"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"

    class Preference(models.TextChoices):
        A = "A", "Report A"
        B = "B", "Report B"
        NONE = "none", "No preference"

    class BlindingGuess(models.TextChoices):
        A = "A", "Report A"
        B = "B", "Report B"
        NOT_A = "not_a", "Report A was not written with AI assistance"  # single-report tasks
        DONT_KNOW = "dont_know", "Don't know"

    public_id = models.CharField(max_length=24, unique=True, default=opaque_id, editable=False)
    case = models.ForeignKey("trial.Case", on_delete=models.PROTECT, related_name="ratings")
    expert = models.ForeignKey("trial.Membership", on_delete=models.PROTECT, related_name="ratings")
    read_a = models.ForeignKey(Read, on_delete=models.PROTECT, related_name="+")
    read_b = models.ForeignKey(Read, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    order_seed = models.CharField(max_length=64, blank=True, help_text="Seed the A/B order was drawn from")
    order_key = models.BigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.TODO)
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    autosaved_at = models.DateTimeField(null=True, blank=True)
    preference = models.CharField(max_length=4, choices=Preference.choices, blank=True)
    quality_a = models.PositiveSmallIntegerField(null=True, blank=True)
    quality_b = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    # Asked when the trial measures blinding: which report the expert thinks was written with AI assistance.
    blinding_guess = models.CharField(max_length=10, choices=BlindingGuess.choices, blank=True)

    class Meta:
        db_table = "reading_rating"  # moved from reading; the table keeps its name (no data copied)
        ordering = ["order_key"]
        constraints = [
            models.UniqueConstraint(fields=["case", "expert"], name="uniq_rating_case_expert"),
            models.CheckConstraint(
                condition=models.Q(quality_a__isnull=True) | models.Q(quality_a__gte=1, quality_a__lte=5),
                name="rating_quality_a_range",
            ),
            models.CheckConstraint(
                condition=models.Q(quality_b__isnull=True) | models.Q(quality_b__gte=1, quality_b__lte=5),
                name="rating_quality_b_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Rating {self.public_id}"


@history()
class RatingAmendment(models.Model):
    """A change to a submitted rating (issue 18 item 2). The rating keeps its first submission unchanged, which is
    what the analysis counts (docs/primary_analysis.md); each amendment stores the answer before and after (in the
    task's own A/B terms: no arm), who made it, when and why. ``number`` counts the rating's amendments from 1."""

    rating = models.ForeignKey(Rating, on_delete=models.PROTECT, related_name="amendments")
    number = models.PositiveSmallIntegerField()
    amended_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amended_as = models.CharField(max_length=16, help_text="The role the change was made in: expert or coordinator")
    reason = models.TextField()
    previous = models.JSONField(help_text="The answer before: {preference, quality_a, quality_b, comment, "
                                          "blinding_guess}")
    amended = models.JSONField(help_text="The answer after, same keys")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rating", "number"]
        constraints = [models.UniqueConstraint(fields=["rating", "number"], name="uniq_rating_amendment_number")]

    def __str__(self) -> str:
        return f"Amendment {self.number} of {self.rating}"


@history()
class ArenaTask(models.Model):
    """One expert's blinded comparison of two model versions' drafts of a case, without readers: the standalone
    arena (issue 20 item 1; docs/ai-evaluation.md, "Standalone arena"). The pair of versions is drawn per case from
    the trial's secret, uniformly among the pairs of the case's usable drafts, and the sides per task
    (``order_seed``); the expert prefers A, B or neither (an explicit tie) and may score each draft 1-5. Nothing the
    expert receives names the model version (rating.selectors.arena_task_payload)."""

    class Status(models.TextChoices):
        TODO = "todo", "To do"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"

    class Preference(models.TextChoices):
        A = "A", "Draft A"
        B = "B", "Draft B"
        TIE = "tie", "Tie (neither better)"

    public_id = models.CharField(max_length=24, unique=True, default=opaque_id, editable=False)
    case = models.ForeignKey("trial.Case", on_delete=models.PROTECT, related_name="arena_tasks")
    expert = models.ForeignKey("trial.Membership", on_delete=models.PROTECT, related_name="arena_tasks")
    draft_a = models.ForeignKey("inference.Draft", on_delete=models.PROTECT, related_name="+")
    draft_b = models.ForeignKey("inference.Draft", on_delete=models.PROTECT, related_name="+")
    pair_seed = models.CharField(max_length=64, help_text="Seed the case's pair of versions was drawn from")
    order_seed = models.CharField(max_length=64, help_text="Seed the A/B sides were drawn from")
    order_key = models.BigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.TODO)
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    autosaved_at = models.DateTimeField(null=True, blank=True)
    preference = models.CharField(max_length=4, choices=Preference.choices, blank=True)
    quality_a = models.PositiveSmallIntegerField(null=True, blank=True)
    quality_b = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["order_key"]
        constraints = [
            models.UniqueConstraint(fields=["case", "expert"], name="uniq_arena_case_expert"),
            models.CheckConstraint(condition=~models.Q(draft_a=models.F("draft_b")), name="arena_two_drafts"),
            models.CheckConstraint(
                condition=models.Q(quality_a__isnull=True) | models.Q(quality_a__gte=1, quality_a__lte=5),
                name="arena_quality_a_range",
            ),
            models.CheckConstraint(
                condition=models.Q(quality_b__isnull=True) | models.Q(quality_b__gte=1, quality_b__lte=5),
                name="arena_quality_b_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Arena task {self.public_id}"


@history()
class ArenaAmendment(models.Model):
    """A change to a submitted arena judgement by its expert or a coordinator of the trial, as a rating's amendment
    (issue 18 item 2). The task keeps its first submission unchanged, which is what the arena's analysis counts
    (docs/ai-evaluation.md); each amendment stores the answer before and after (in the task's A/B terms: no model
    version), who made it, in which role, when and why. ``number`` counts the task's amendments from 1."""

    task = models.ForeignKey(ArenaTask, on_delete=models.PROTECT, related_name="amendments")
    number = models.PositiveSmallIntegerField()
    amended_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amended_as = models.CharField(max_length=16, help_text="The role the change was made in: expert or coordinator")
    reason = models.TextField()
    previous = models.JSONField(help_text="The answer before: {preference, quality_a, quality_b, comment}")
    amended = models.JSONField(help_text="The answer after, same keys")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "number"]
        constraints = [models.UniqueConstraint(fields=["task", "number"], name="uniq_arena_amendment_number")]

    def __str__(self) -> str:
        return f"Amendment {self.number} of {self.task}"
