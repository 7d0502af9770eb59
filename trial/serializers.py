from django.contrib.auth import get_user_model
from rest_framework import serializers

from .blinding import is_blinded_participant
from .models import AllocationSlot, Arm, Case, Center, Membership, Signature, Trial

User = get_user_model()


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField(required=False, allow_blank=True)


class TrialSerializer(serializers.ModelSerializer):
    findings = FindingSerializer(many=True, required=False)

    class Meta:
        model = Trial
        # Every trial setting (trial.services.TRIAL_SETTINGS) beside the code, design and status.
        fields = ["code", "title", "design", "status", "findings", "expert_panel_size", "preference_majority",
                  "experts_off_own_center", "washout_days", "overdue_after_days", "allowed_modalities", "date_policy",
                  "keep_identity_key", "import_settings", "allow_retrieval_baseline", "ask_blinding_guess",
                  "ood_action", "ood_threshold", "prefill_draft_findings", "require_signatures", "sign_submissions",
                  "similar_cases_k", "similar_cases_encoder", "similar_cases_weights", "created_at", "locked_at"]
        read_only_fields = ["status", "created_at", "locked_at"]


class TrialSettingsSerializer(serializers.ModelSerializer):
    """A change of trial settings (any of them; findings only during setup). Once enrolment has started the change
    needs a reason; it is audited with it."""

    findings = FindingSerializer(many=True, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500,
                                   help_text="Why (required once the trial has left setup); kept in the audit log")

    class Meta:
        model = Trial
        fields = ["title", "findings", "expert_panel_size", "preference_majority", "experts_off_own_center",
                  "washout_days", "overdue_after_days", "allowed_modalities", "date_policy", "keep_identity_key",
                  "import_settings", "allow_retrieval_baseline", "ask_blinding_guess", "ood_action", "ood_threshold",
                  "prefill_draft_findings", "require_signatures", "sign_submissions", "similar_cases_k",
                  "similar_cases_encoder", "similar_cases_weights", "reason"]
        extra_kwargs = {"title": {"required": False}}


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why (kept in the audit log)")


class RemovedSerializer(serializers.Serializer):
    removed = serializers.BooleanField()


class CenterEditSerializer(ReasonSerializer):
    name = serializers.CharField(max_length=200)
    code = serializers.SlugField(max_length=40, required=False,
                                 help_text="Changes only while no case or person refers to the center")


class ArmEditSerializer(ReasonSerializer):
    name = serializers.CharField(max_length=200)
    ratio = serializers.IntegerField(min_value=1, max_value=10)


class MemberEditSerializer(ReasonSerializer):
    center = serializers.CharField(allow_blank=True, allow_null=True, help_text="Center code; empty for none")
    experience = serializers.ChoiceField(choices=Membership.Experience.choices, required=False, allow_blank=True)


class CenterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Center
        fields = ["id", "code", "name"]


class ArmSerializer(serializers.ModelSerializer):
    # The assignment lives in the inference app (docs/architecture.md); read through the reverse relation.
    model_version = serializers.CharField(source="model_assignment.model_version.name", read_only=True,
                                          allow_null=True, default=None)

    class Meta:
        model = Arm
        fields = ["id", "code", "name", "is_ai", "ratio", "model_version"]


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    center = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    arm = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "center", "experience", "arm", "enrolled_at"]
        read_only_fields = ["arm", "enrolled_at"]

    def get_arm(self, obj) -> str | None:
        return obj.arm.code if obj.arm_id and arms_shown(self.context, obj) else None


class MembershipCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True,
                                   help_text="For a new user: they are emailed a one-time link to set a password")
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    center = serializers.CharField(required=False, allow_blank=True)
    experience = serializers.ChoiceField(choices=Membership.Experience.choices, required=False, allow_blank=True)


class CaseSerializer(serializers.ModelSerializer):
    center = serializers.SlugRelatedField(slug_field="code", read_only=True)
    arm = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = ["id", "code", "center", "status", "arm", "enrolled_at", "exclusion_reason"]

    def get_arm(self, obj) -> str | None:
        # Revealed only after enrolment (the allocation is made then), and never to a blinded participant.
        return obj.arm.code if obj.arm_id and obj.enrolled_at and arms_shown(self.context, obj) else None


def arms_shown(context: dict, obj) -> bool:
    """False when the request's user reads or rates in the object's unlocked trial (trial/blinding.py)."""
    request = context.get("request")
    if request is None:
        return True
    view = context.get("view")
    trial = view.get_trial() if hasattr(view, "get_trial") else obj.trial
    return not is_blinded_participant(request.user, trial)


class CaseCreateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    center = serializers.CharField(max_length=40)


class AllocationSerializer(serializers.ModelSerializer):
    stratum = serializers.CharField(source="stratum.key")
    arm = serializers.CharField(source="arm.code")
    unit = serializers.SerializerMethodField()

    class Meta:
        model = AllocationSlot
        fields = ["stratum", "sequence", "arm", "revealed_at", "unit"]

    def get_unit(self, obj) -> str:
        if obj.case_id:
            return f"case:{obj.case.code}"
        return f"reader:{obj.membership.user.username}" if obj.membership_id else ""


class AllocationListCreateSerializer(serializers.Serializer):
    block_sizes = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    slots_per_stratum = serializers.IntegerField(min_value=1, max_value=100000, required=False)
    stratify_by_experience = serializers.BooleanField(required=False, default=False)
    # The electronic signature of the sealing where the trial requires signatures (trial.signatures): never stored.
    password = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)
    meaning = serializers.ChoiceField(choices=Signature.Meaning.choices, default=Signature.Meaning.APPROVAL)


class StatusSerializer(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=Trial.Status.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    # The electronic signature where the trial requires one for this step (trial.signatures): never stored.
    password = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)
    meaning = serializers.ChoiceField(choices=Signature.Meaning.choices, default=Signature.Meaning.APPROVAL)


class OutstandingSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="e.g. reads_not_done, ratings_not_done, cases_not_enrolled")
    count = serializers.IntegerField()
    message = serializers.CharField()


class StatusPreviewSerializer(serializers.Serializer):
    """Shapes trial.selectors.status_preview."""

    status = serializers.CharField()
    next_status = serializers.CharField(allow_null=True)
    outstanding = OutstandingSerializer(many=True)
    reason_required = serializers.BooleanField()
    signature_required = serializers.BooleanField(help_text="POST needs `password` (and `meaning`): trial.signatures")


class AllocationListSerializer(serializers.Serializer):
    """Shapes trial.selectors.allocation_list_summary: the disclosed fields are present only after lock."""

    unit = serializers.CharField()
    ratio = serializers.DictField(child=serializers.IntegerField())
    stratify_by_experience = serializers.BooleanField()
    slots_per_stratum = serializers.IntegerField()
    list_hash = serializers.CharField(help_text="sha256 over (salt, seed, list)")
    created_at = serializers.DateTimeField()
    disclosed = serializers.BooleanField(help_text="True once the trial is locked")
    block_sizes = serializers.ListField(child=serializers.IntegerField(), required=False, help_text="After lock")
    seed = serializers.CharField(required=False, help_text="After lock")
    salt = serializers.CharField(required=False, help_text="After lock")
    scheme = serializers.CharField(required=False, help_text="After lock")



class CaseCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    enrolled = serializers.IntegerField()
    excluded = serializers.IntegerField()


class TrialProgressSerializer(serializers.Serializer):
    """trial.selectors.trial_progress: the trial's own counts, plus the counts the apps above add through
    trial.signals.progress_requested (reading: reads_*; rating: ratings_*, cases_short_of_panel), kept as given."""

    cases = CaseCountsSerializer()
    members = serializers.DictField(child=serializers.IntegerField(), help_text="{role: number of members}")
    readers_enrolled = serializers.IntegerField()

    def to_representation(self, instance):
        out = super().to_representation(instance)
        out.update({k: v for k, v in instance.items() if k not in out})  # the other apps' counts
        return out
