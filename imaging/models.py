"""De-identified images of cases and the optional identity key (docs/design.md section 2)."""
from __future__ import annotations

from django.db import models

from trial.models import new_secret


def image_upload_path(instance, filename: str) -> str:
    return f"images/{instance.case.trial_id}/{filename}"


class Image(models.Model):
    """One de-identified DICOM instance of a case, stored content-addressed, with its display renditions."""

    public_id = models.CharField(max_length=24, unique=True, editable=False)
    case = models.ForeignKey("trial.Case", on_delete=models.PROTECT, related_name="images")
    source_sha256 = models.CharField(max_length=64, help_text="Hash of the original file: re-import is idempotent")
    sha256 = models.CharField(max_length=64, help_text="Hash of the stored de-identified file")
    dicom_file = models.CharField(max_length=300)
    display_file = models.CharField(max_length=300, help_text="8-bit lossless PNG after VOI/window")
    full_range_file = models.CharField(max_length=300, help_text="16-bit PNG of the full dynamic range")
    sop_instance_uid = models.CharField(max_length=64, db_index=True,
                                        help_text="Pseudonymous UID (keyed per trial): one instance, one image")
    modality = models.CharField(max_length=8)
    view_position = models.CharField(max_length=16, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    bits_allocated = models.PositiveSmallIntegerField()
    bits_stored = models.PositiveSmallIntegerField()
    photometric_interpretation = models.CharField(max_length=16)
    pixel_spacing = models.JSONField(null=True, blank=True, help_text="[row, column] mm")
    pixel_spacing_kind = models.CharField(
        max_length=12, blank=True,
        help_text="calibrated | detector | unstated: what pixel_spacing means (imaging.dicom.summary.spacing_kind)")
    laterality = models.CharField(max_length=4, blank=True, help_text="Image Laterality, else Laterality")
    patient_age = models.CharField(max_length=4, blank=True,
                                   help_text="Patient's Age after de-identification (kept only by the trial's option)")
    patient_sex = models.CharField(max_length=1, blank=True,
                                   help_text="Patient's Sex after de-identification (kept only by the trial's option)")
    display = models.JSONField(default=dict, help_text="What the viewer needs for window/level on the full range")
    burned_in_annotation = models.BooleanField(default=False, help_text="Flagged for coordinator review")
    flags = models.JSONField(default=list, blank=True,
                             help_text="Import findings a coordinator should see, e.g. view_empty, body_part_empty")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "trial_image"  # moved from trial; the table keeps its name (no data copied)
        ordering = ["case", "created_at"]
        constraints = [models.UniqueConstraint(fields=["case", "source_sha256"], name="uniq_image_source")]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_secret()[:24]
        super().save(*args, **kwargs)


class IdentityKey(models.Model):
    """Original to pseudonymous identifiers, kept only when the trial chooses to; never shown to readers/experts."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="identity_keys")
    kind = models.CharField(max_length=20)  # patient_id, study_uid, sop_uid
    original = models.CharField(max_length=200)
    pseudonym = models.CharField(max_length=200)

    class Meta:
        db_table = "trial_identitykey"
        constraints = [models.UniqueConstraint(fields=["trial", "kind", "original"], name="uniq_identity_key")]

    def __str__(self) -> str:
        return f"{self.kind} key"


class ImportRefusal(models.Model):
    """A file the import refused, by reason only (issue 20: refused inputs in the CONSORT flow). No file name, hash,
    UID or other identifier of the refused file is kept; the importer's on-screen result names the file."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="import_refusals")
    center = models.ForeignKey("trial.Center", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="import_refusals")
    reason_code = models.CharField(max_length=40, help_text="The refusal's reason code (docs/import.md)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial", "created_at"]
        indexes = [models.Index(fields=["trial", "reason_code"], name="import_refusal_reason")]

    def __str__(self) -> str:
        return f"{self.reason_code} ({self.created_at:%Y-%m-%d})"
