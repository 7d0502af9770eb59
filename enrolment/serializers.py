from rest_framework import serializers


class ExcludeCaseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class CaseImageSerializer(serializers.Serializer):
    id = serializers.CharField()
    modality = serializers.CharField()
    view_position = serializers.CharField()
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    pixel_spacing = serializers.JSONField(allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())
    burned_in_annotation = serializers.BooleanField()
    display_url = serializers.CharField()
    meta_url = serializers.CharField()


class CaseDraftSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    status = serializers.CharField()
    queued_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class CaseReadSerializer(serializers.Serializer):
    reader = serializers.CharField(allow_null=True)
    arm = serializers.CharField(allow_null=True, help_text="Null to a coordinator who is also a blinded participant")
    session = serializers.IntegerField()
    status = serializers.CharField()
    opened_at = serializers.DateTimeField(allow_null=True)
    submitted_at = serializers.DateTimeField(allow_null=True)
    amend_url = serializers.CharField(allow_null=True, help_text="Null after lock, for an unsubmitted read, and to a "
                                                                 "coordinator who is also a blinded participant")


class CaseRatingTaskSerializer(serializers.Serializer):
    """One rating task as the case page lists it: the expert, status and submission time; never its A/B order, its
    reads, its answers or an arm. ``amend_url`` only to a coordinator who neither reads nor rates in the trial, and
    only before lock (docs/design.md section 5)."""

    expert = serializers.CharField()
    status = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    amend_url = serializers.CharField(allow_null=True, help_text="Null after lock, for an unsubmitted task, and to a "
                                                                 "coordinator who is also a blinded participant")


class CaseOverviewSerializer(serializers.Serializer):
    """Shapes enrolment.selectors.case_overview."""

    code = serializers.CharField()
    center = serializers.CharField()
    status = serializers.CharField()
    arm = serializers.CharField(allow_null=True)
    enrolled_at = serializers.DateTimeField(allow_null=True)
    exclusion_reason = serializers.CharField(allow_blank=True)
    needs_review = serializers.BooleanField()
    review_reason = serializers.CharField(allow_blank=True)
    has_reference_standard = serializers.BooleanField()
    images = CaseImageSerializer(many=True)
    drafts = CaseDraftSerializer(many=True)
    reads = CaseReadSerializer(many=True)
    ratings = serializers.DictField(child=serializers.IntegerField())
    rating_tasks = CaseRatingTaskSerializer(many=True)
    arm_hidden = serializers.BooleanField()
    can_exclude = serializers.BooleanField()
