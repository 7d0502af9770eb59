"""Trials, centers, arms, people, cases, the sealed allocation list and the audit log
(docs/design.md sections 1, 2, 5)."""
from __future__ import annotations

import secrets

import pghistory
from django.conf import settings
from django.db import models

DEFAULT_FINDINGS = [
    {"code": "pleural_effusion", "label": "Pleural effusion"},
    {"code": "pneumothorax", "label": "Pneumothorax"},
    {"code": "atelectasis", "label": "Atelectasis"},
    {"code": "consolidation", "label": "Consolidation"},
    {"code": "cardiomegaly", "label": "Cardiomegaly"},
    {"code": "lung_opacity", "label": "Lung opacity"},
]


def default_findings() -> list[dict]:
    return [dict(f) for f in DEFAULT_FINDINGS]


def new_secret() -> str:
    return secrets.token_hex(16)


# Row-level history by PostgreSQL triggers (django-pghistory): every insert, update and delete of the trial's
# setup tables leaves an event row with the whole row as it became, whoever made it: services, bulk updates, raw
# SQL or the shell (docs/audit.md). The hash chains (trial.audit) keep covering what the services record.
def history(**kwargs):
    """A fresh set of trackers per model (a tracker binds to the model it decorates)."""
    return pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), **kwargs)


@history(exclude=["secret"])  # the trial's secret stays in one place
class Trial(models.Model):
    class Design(models.TextChoices):
        PAIRED_BY_CASE = "paired_by_case", "Paired by case"
        CASE_RANDOMISED = "case_randomised", "Case-randomised"
        CROSSOVER = "crossover", "Crossover (fully crossed MRMC)"

    class Status(models.TextChoices):
        SETUP = "setup", "Setup"
        ENROLLING = "enrolling", "Enrolling"
        READING = "reading", "Reading"
        RATING = "rating", "Rating"
        LOCKED = "locked", "Locked"

    code = models.SlugField(max_length=40, unique=True, help_text="Protocol code, e.g. NCT07117266")
    title = models.CharField(max_length=300)
    design = models.CharField(max_length=20, choices=Design.choices, default=Design.PAIRED_BY_CASE)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SETUP)
    findings = models.JSONField(default=default_findings, help_text="The trial's findings: [{code, label}]")
    # Rating and reading settings
    expert_panel_size = models.PositiveSmallIntegerField(default=5)
    preference_majority = models.PositiveSmallIntegerField(default=3)
    experts_off_own_center = models.BooleanField(default=False)
    washout_days = models.PositiveSmallIntegerField(default=28)
    overdue_after_days = models.PositiveSmallIntegerField(
        default=14, help_text="A read or rating not done this many days after it was made counts as overdue on the "
                              "coordinator's progress view")
    # Import settings
    allowed_modalities = models.JSONField(default=list, blank=True, help_text="Extra modalities beyond CR/DX")
    date_policy = models.CharField(max_length=10, choices=[("shift", "Shift"), ("remove", "Remove")], default="shift")
    keep_identity_key = models.BooleanField(default=False)
    # Blinding settings (docs/design.md sections 5 and 6)
    allow_retrieval_baseline = models.BooleanField(
        default=False, help_text="Allow drafts from the retrieval baseline, which repeats public report text that an "
                                 "expert could look up (demo only)")
    require_signatures = models.BooleanField(
        default=False, help_text="Moving to rating and to locked needs the coordinator's electronic signature "
                                 "(password re-entered; 21 CFR 11.200, docs/audit.md)")
    sign_submissions = models.BooleanField(
        default=False, help_text="Readers and experts sign each read and rating they submit (password re-entered; "
                                 "21 CFR 11.50, 11.200, docs/audit.md)")
    ask_blinding_guess = models.BooleanField(
        default=False, help_text="After each rating, ask the expert which report they think was written with AI "
                                 "assistance (measures blinding)")
    # Out-of-distribution check of each draft's input (inference/backends/ood.py; docs/design.md section 6)
    ood_action = models.CharField(
        max_length=10, choices=[("mark", "Mark"), ("withhold", "Withhold")], default="mark",
        help_text="A draft whose input is out of distribution is shown with a warning (mark) or not shown at all "
                  "(withhold: the AI-arm reader reads without it, with the warning)")
    ood_threshold = models.FloatField(
        default=1.0, help_text="Out-of-distribution score above which a draft is marked or withheld (1.0 = each "
                               "check's documented cut-off; higher is more lenient)")
    prefill_draft_findings = models.BooleanField(
        default=True, help_text="AI arm: the draft also pre-fills each finding's present/absent choice from its "
                                "probability (present at 0.5 or above); the reader still gives every confidence")
    import_settings = models.JSONField(
        default=dict, blank=True,
        help_text="Chest checks and de-identification options; keys and defaults in trial/import_settings.py",
    )
    # Similar cases beside the AI-arm viewer (issue 21 item 2; inference/similar.py): off by default
    similar_cases_k = models.PositiveSmallIntegerField(
        default=0, help_text="AI arm: show this many most similar cases of the trial's reference library beside the "
                             "viewer, with their reports (0: off). Set before enrolment: they are found with the draft")
    similar_cases_encoder = models.CharField(
        max_length=20, choices=[("image", "Weight-free image embedding"), ("xrv_densenet", "DenseNet-121 features")],
        default="image", help_text="How case similarity is measured (inference/backends/similar.py)")
    similar_cases_weights = models.CharField(
        max_length=500, blank=True, help_text="xrv_densenet: path of the local torchxrayvision-format weights, as the "
                                              "inference worker sees it")
    # Secret material: never shown in any view; UIDs and A/B orders derive from it.
    secret = models.CharField(max_length=64, default=new_secret, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code}: {self.title}"

    @property
    def is_locked(self) -> bool:
        return self.status == self.Status.LOCKED

    @property
    def finding_codes(self) -> list[str]:
        return [f["code"] for f in self.findings]

    @property
    def randomisation_unit(self) -> str:
        return "case" if self.design == self.Design.CASE_RANDOMISED else "reader"

    @property
    def is_paired(self) -> bool:
        return self.design != self.Design.CASE_RANDOMISED


@history()
class Center(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="centers")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["trial", "code"], name="uniq_center_code")]

    def __str__(self) -> str:
        return self.name


@history()
class Arm(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="arms")
    code = models.SlugField(max_length=40, help_text="e.g. unassisted, ai_assisted")
    name = models.CharField(max_length=200)
    is_ai = models.BooleanField(default=False)
    ratio = models.PositiveSmallIntegerField(default=1, help_text="Allocation ratio weight")

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["trial", "code"], name="uniq_arm_code")]

    def __str__(self) -> str:
        return self.name


@history()
class Membership(models.Model):
    class Role(models.TextChoices):
        COORDINATOR = "coordinator", "Coordinator"
        READER = "reader", "Reader"
        EXPERT = "expert", "Expert"
        STATISTICIAN = "statistician", "Statistician"

    class Experience(models.TextChoices):
        NONE = "", "-"
        JUNIOR = "junior", "Junior"
        SENIOR = "senior", "Senior"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=14, choices=Role.choices)
    center = models.ForeignKey(Center, null=True, blank=True, on_delete=models.PROTECT, related_name="memberships")
    experience = models.CharField(max_length=8, choices=Experience.choices, blank=True, default="")
    # A reader's arm, set only when enrolment reveals the reader's allocation.
    arm = models.ForeignKey(Arm, null=True, blank=True, on_delete=models.PROTECT, related_name="readers")
    enrolled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial", "role", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "trial", "role"], name="uniq_membership_role")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}, {self.trial.code})"


@history()
class Case(models.Model):
    class Status(models.TextChoices):
        IMPORTED = "imported", "Imported"
        ENROLLED = "enrolled", "Enrolled"
        READ = "read", "Read"
        RATED = "rated", "Rated"
        EXCLUDED = "excluded", "Excluded"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="cases")
    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="cases")
    code = models.CharField(max_length=64, help_text="Pseudonymous case code")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IMPORTED)
    # Set when enrolment reveals a case allocation (case-randomised design).
    arm = models.ForeignKey(Arm, null=True, blank=True, on_delete=models.PROTECT, related_name="allocated_cases")
    enrolled_at = models.DateTimeField(null=True, blank=True)
    exclusion_reason = models.CharField(max_length=300, blank=True)
    # Reference standard: {finding_code: 0/1} and a reference report, for AI evaluation.
    reference_findings = models.JSONField(default=dict, blank=True)
    reference_report = models.TextField(blank=True)
    # Shown to readers when the trial provides it (the reference CSV's optional "indication" column): free text
    # from the request, de-identified by whoever prepares the CSV; never an identifier.
    clinical_indication = models.CharField(max_length=300, blank=True)
    study_uid_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # Set at import (e.g. burned-in annotation): the case cannot be enrolled until a coordinator has looked at
    # its images and confirmed or excluded it (imaging.services.review_case).
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=200, blank=True)
    # The trial's reference library (issue 21 item 2): cases with reference reports shown to AI-arm readers as
    # similar cases. A library case is never enrolled, so never read or rated (trial.services.enrol_case).
    library = models.BooleanField(
        default=False, help_text="Reference library case: shown as a similar case with its report; never enrolled")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["trial", "code"], name="uniq_case_code")]

    def __str__(self) -> str:
        return self.code


class AllocationList(models.Model):
    """The sealed list, generated once at setup. Its entries are never shown until revealed."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="allocation_list")
    unit = models.CharField(max_length=8, choices=[("reader", "Reader"), ("case", "Case")])
    # Secret until the trial is locked (docs/design.md section 5): never in a page, API, export or error before then.
    seed = models.CharField(max_length=200, editable=False)
    salt = models.CharField(max_length=64, editable=False, blank=True, help_text="Secret 256-bit commitment salt")
    scheme = models.CharField(max_length=12, default="v2", editable=False, help_text="trial.randomisation scheme")
    block_sizes = models.JSONField(help_text="Secret until lock")
    ratio = models.JSONField(help_text="{arm_code: weight}")
    stratify_by_experience = models.BooleanField(default=False)
    slots_per_stratum = models.PositiveIntegerField()
    list_hash = models.CharField(max_length=64, help_text="sha256 over (salt, seed, list): the commitment")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"Allocation list of {self.trial_id}"

    @property
    def is_disclosed(self) -> bool:
        """Seed, salt and block sizes are disclosed once the trial is locked."""
        return self.trial.is_locked



class AllocationStratum(models.Model):
    """One stratum's pointer into the list; its row lock serialises concurrent enrolments."""

    allocation_list = models.ForeignKey(AllocationList, on_delete=models.PROTECT, related_name="strata")
    key = models.CharField(max_length=120)
    next_sequence = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["allocation_list", "key"], name="uniq_stratum")]

    def __str__(self) -> str:
        return f"Stratum {self.key}"



class AllocationSlot(models.Model):
    stratum = models.ForeignKey(AllocationStratum, on_delete=models.PROTECT, related_name="slots")
    sequence = models.PositiveIntegerField()
    block_index = models.PositiveIntegerField()
    block_size = models.PositiveSmallIntegerField()
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")
    revealed_at = models.DateTimeField(null=True, blank=True)
    revealed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    case = models.OneToOneField(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="allocation")
    membership = models.OneToOneField(
        Membership, null=True, blank=True, on_delete=models.PROTECT, related_name="allocation"
    )

    class Meta:
        ordering = ["stratum", "sequence"]
        constraints = [models.UniqueConstraint(fields=["stratum", "sequence"], name="uniq_slot_sequence")]

    def __str__(self) -> str:
        return f"Slot {self.sequence}"



class AuditHead(models.Model):
    """The tip of one hash chain (per actor within a trial, the trial's own, the global one; see trial.audit);
    locked while appending."""

    trial = models.ForeignKey(Trial, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_heads")
    chain = models.CharField(max_length=60, unique=True)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    count = models.PositiveBigIntegerField(default=0)
    # HMAC-SHA256 of (chain, count, last_hash) under settings.AUDIT_SIGNING_KEY, a key kept outside the database:
    # rewriting and re-hashing a chain with database access alone leaves a head whose signature does not verify.
    signature = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return self.chain



class AuditEntry(models.Model):
    """Append-only: saving an existing entry or deleting one raises."""

    chain = models.CharField(max_length=60, db_index=True)
    sequence = models.PositiveBigIntegerField()
    trial = models.ForeignKey(Trial, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField()
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=80)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain", "sequence"]
        constraints = [models.UniqueConstraint(fields=["chain", "sequence"], name="uniq_audit_sequence")]
        indexes = [models.Index(fields=["trial", "at"], name="audit_trial_at")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.chain}#{self.sequence} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit entries are append-only.")


class Signature(models.Model):
    """An electronic signature (21 CFR 11.50, 11.70, 11.200; docs/audit.md): who (printed name), when (UTC), what it
    means, bound to the audit entry of the signed action by that entry's hash, so an entry changed later no longer
    matches and the signature shows as invalid. Append-only, like the audit log."""

    class Meaning(models.TextChoices):
        AUTHORSHIP = "authorship", "Authorship"
        REVIEW = "review", "Review"
        APPROVAL = "approval", "Approval"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_name = models.CharField(max_length=300)
    meaning = models.CharField(max_length=12, choices=Meaning.choices)
    signed_at = models.DateTimeField()
    entry = models.ForeignKey(AuditEntry, on_delete=models.PROTECT, related_name="signatures")
    record_hash = models.CharField(max_length=64, help_text="The signed audit entry's hash when it was signed")
    # The signed record itself (issue 18 item 3): its fields that the signature covers and their hash when signed,
    # so a later change of the record (through the application or around it) shows the signature as invalid.
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.Model of the signed record")
    object_id = models.CharField(max_length=64, blank=True)
    signed_fields = models.JSONField(default=list, blank=True)
    content_hash = models.CharField(max_length=64, blank=True,
                                    help_text="SHA-256 of the signed fields' values when signed")

    class Meta:
        ordering = ["signed_at", "pk"]

    def __str__(self) -> str:
        return f"{self.printed_name} ({self.meaning}) {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Signatures are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Signatures are append-only.")
