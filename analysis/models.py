"""Analysis runs: one export + analysis + report of a trial, run in the background (docs/design.md section 7)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from trial.models import history


@history()  # row history by triggers, as the trial's records (issue 18; trial.selectors.RECORD_TABLES)
class AnalysisRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="analysis_runs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100")
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    output_dir = models.CharField(max_length=300, blank=True, help_text="Relative to MEDIA_ROOT")
    data_sha256 = models.CharField(max_length=64, blank=True)
    arms_masked = models.BooleanField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Headline numbers of the primary analysis")
    error = models.TextField(blank=True)
    # Declared final by a statistician's electronic signature (issue 18 item 3): at most one run per trial.
    final_at = models.DateTimeField(null=True, blank=True)
    final_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["trial", "-created_at"])]

    def __str__(self) -> str:
        return f"Analysis run {self.pk} of {self.trial_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
