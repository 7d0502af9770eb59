"""Model registry and drafts (docs/design.md sections 2 and 6)."""
from __future__ import annotations

from django.db import models

from trial.models import history


class ModelVersion(models.Model):
    class Backend(models.TextChoices):
        RETRIEVAL = "retrieval", "Retrieval baseline"
        JANUS = "janus", "Janus (transformers)"

    name = models.CharField(max_length=120, unique=True)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.RETRIEVAL)
    weights_path = models.CharField(max_length=500, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    generation_params = models.JSONField(default=dict, blank=True)
    prompt_template = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def display_label(self) -> str:
        return "retrieval baseline" if self.backend == self.Backend.RETRIEVAL else self.name


class ArmModelVersion(models.Model):
    """Which model version drafts an AI arm's reads. It lives here, not on ``trial.Arm``, so that the trial app
    knows nothing of inference (docs/architecture.md, "Dependencies")."""

    arm = models.OneToOneField("trial.Arm", on_delete=models.PROTECT, primary_key=True, related_name="model_assignment")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="arm_assignments")

    class Meta:
        verbose_name = "arm's model version"

    def __str__(self) -> str:
        return f"{self.arm} -> {self.model_version}"


class ArenaModelVersion(models.Model):
    """A model version that takes part in a trial's standalone arena (issue 20 item 1; docs/ai-evaluation.md,
    "Standalone arena"): experts compare the drafts of the arena's versions on the same case, without readers. Set
    by a coordinator (:func:`inference.services.set_arena_model_versions`); with no row, the arena is the trial's AI
    arms' versions (:func:`inference.selectors.arena_model_versions`). A version need not draft an arm: its drafts
    are made for the trial's cases by the ordinary draft path."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="arena_versions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="arena_assignments")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial", "model_version__name"]
        verbose_name = "arena model version"
        constraints = [models.UniqueConstraint(fields=["trial", "model_version"], name="uniq_arena_trial_version")]

    def __str__(self) -> str:
        return f"{self.trial} arena: {self.model_version}"


class OodAction(models.TextChoices):
    NONE = "", "In distribution"
    MARKED = "marked", "Marked"
    WITHHELD = "withheld", "Withheld"


@history()  # row history by triggers (issue 18 item 1)
class Draft(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    case = models.ForeignKey("trial.Case", on_delete=models.PROTECT, related_name="drafts")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="drafts")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    findings_text = models.TextField(blank=True)
    impression_text = models.TextField(blank=True)
    probabilities = models.JSONField(default=dict, blank=True)
    # The expert probabilities after the model version's current calibration (inference.ExpertCalibration), per
    # finding that has a fit; {} when none applied. ``probabilities`` stays raw: the expert sentence and the
    # analysis use the raw outputs, readers are shown these (docs/calibration.md). Which record: parameters
    # ["calibration"] and parameters["provenance"]["expert_calibration"] (its id and parameter hash).
    calibrated_probabilities = models.JSONField(default=dict, blank=True)
    boxes = models.JSONField(default=list, blank=True)
    neighbours = models.JSONField(default=list, blank=True)
    # The most similar cases of the trial's reference library (issue 21 item 2; inference/similar.py), found when
    # the draft is made: [{"case_id", "score", "encoder"}], best first; empty when the trial shows none.
    similar_cases = models.JSONField(default=list, blank=True)
    prompt = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(default=0)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    queue_wait_s = models.FloatField(null=True, blank=True)
    load_s = models.FloatField(null=True, blank=True)
    generate_s = models.FloatField(null=True, blank=True)
    worker_host = models.CharField(max_length=200, blank=True)
    # Out-of-distribution check of the input (inference/backends/ood.py): the score, its reasons, what the trial's
    # setting did with them ("" in distribution, "marked": shown with a warning, "withheld": not shown), details.
    ood_score = models.FloatField(null=True, blank=True)
    ood_reasons = models.JSONField(default=list, blank=True)
    ood_action = models.CharField(max_length=10, choices=OodAction.choices, default=OodAction.NONE, blank=True)
    ood = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["case", "model_version"]
        constraints = [models.UniqueConstraint(fields=["case", "model_version"], name="uniq_draft_per_case_model")]

    def __str__(self) -> str:
        return f"Draft {self.case} / {self.model_version} ({self.status})"

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def is_withheld(self) -> bool:
        """Out of distribution and the trial withholds such drafts: the reader is not shown its text."""
        return self.ood_action == OodAction.WITHHELD


class ExpertCalibration(models.Model):
    """Per-finding recalibration of a model version's expert probabilities, fitted on one trial's reference-standard
    cases (issue 16 item 3, ``manage.py calibrate_expert``). A record of its own, not a field of the model version:
    a version is immutable once it has drafts (docs/janus.md), while a calibration is fitted after them. Append
    only: a refit is a new record; the latest one for a model version and trial is the current one.

    ``findings``: ``{code: {"a", "b", "n", "n_positive", "converged", "before", "after", "after_cross_fitted"}}`` for
    each fitted finding (``before``/``after``: reliability bins, ECE, MCE and Brier score of the raw and calibrated
    probabilities on the fitted cases; ``after_cross_fitted``: out-of-fold, the honest figure), or ``{"note"}``
    where the reference set has too few cases with or without the finding."""

    class Method(models.TextChoices):
        PLATT = "platt", "Platt scaling"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="calibrations")
    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="expert_calibrations")
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.PLATT)
    n_cases = models.PositiveIntegerField()
    findings = models.JSONField(default=dict)
    fitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fitted_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.model_version} calibrated on {self.trial} ({self.method}, {self.n_cases} cases)"
