"""Input and output serializers of the reader API (reading/api.py).

Inputs are checked with the service's own rules (reading.services.clean_report for the read's trial, as a partial
report; clean_seconds), which raise InvalidInput: a refused body is 400 {code: "invalid", detail} in the same words
as before and as on the reading page. What depends on the read's state stays in the services, which run the checks
again: a complete report at submit (a repeated submit is answered with the saved read, whatever it sends), a late
autosave after submit (no error), the washout.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import InvalidInput
from imaging.serializers import ImageEntrySerializer

from . import services
from .models import Read


class ReaderWorklistQuerySerializer(serializers.Serializer):
    page = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        help_text="Page number of the worklist; a number out of range gives the last page, anything else the first.")


class _Seconds(serializers.Field):
    """Active seconds since the last beat, as reading.services.clean_seconds takes them (null: none)."""

    def to_internal_value(self, data):
        return services.clean_seconds(data)

    def to_representation(self, value):
        return value


_Seconds = extend_schema_field({"type": "number", "minimum": 0, "nullable": True})(_Seconds)


class HeartbeatInputSerializer(serializers.Serializer):
    seconds = _Seconds(required=False, allow_null=True)


class MarkSerializer(serializers.Serializer):
    present = serializers.BooleanField(allow_null=True, required=False)
    confidence = serializers.IntegerField(min_value=1, max_value=5, allow_null=True, required=False)


class ReportInputSerializer(serializers.Serializer):
    """The report so far (autosave) or as submitted, with the active seconds since the last beat."""

    findings_text = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                          max_length=services.TEXT_MAX)
    impression_text = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                            max_length=services.TEXT_MAX)
    finding_marks = serializers.DictField(child=MarkSerializer(), required=False, allow_null=True,
                                          help_text="{finding code: {present, confidence}}")
    seconds = _Seconds(required=False, allow_null=True)
    box_reviews = serializers.DictField(
        child=serializers.ChoiceField(choices=["accepted", "rejected"], allow_null=True), required=False,
        allow_null=True, help_text="AI arm: {box id: accepted, rejected or null} for the boxes shown; left out: "
                                   "unchanged (reading.services.clean_box_reviews checks the ids against the read)")

    def to_internal_value(self, data):
        # The service's checks, not DRF's field by field: the same rules and words as the reading page.
        # context["trial"]: the read's. Partial: what a submit must complete is the service's to check.
        report = services.clean_report(self.context["trial"], data, complete=False)
        seconds = data.get("seconds")
        report["seconds"] = None if seconds is None else services.clean_seconds(seconds)
        if "box_reviews" in data:  # the ids need the read: the service checks them (clean_box_reviews)
            if data["box_reviews"] is not None and not isinstance(data["box_reviews"], dict):
                raise InvalidInput("box_reviews must be an object {box id: accepted or rejected}.")
            report["box_reviews"] = data["box_reviews"]
        return report


class ReadArmSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    is_ai = serializers.BooleanField()


class ReadFindingSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()


class SavedReportSerializer(serializers.Serializer):
    findings_text = serializers.CharField(allow_blank=True)
    impression_text = serializers.CharField(allow_blank=True)
    finding_marks = serializers.JSONField(help_text="{finding code: {present, confidence}}")


class ReadUrlsSerializer(serializers.Serializer):
    page = serializers.CharField()
    worklist = serializers.CharField()
    open = serializers.CharField()
    heartbeat = serializers.CharField()
    autosave = serializers.CharField()
    submit = serializers.CharField()


class DraftBoxSerializer(serializers.Serializer):
    """A grounded finding's box, in pixels of the image named by ``image`` (inference/backends/grounding.py)."""

    finding = serializers.CharField(allow_blank=True)
    image = serializers.CharField(allow_blank=True, allow_null=True, required=False)
    x0 = serializers.FloatField()
    y0 = serializers.FloatField()
    x1 = serializers.FloatField()
    y1 = serializers.FloatField()
    id = serializers.CharField(help_text="The box's id within the draft (what box_reviews names)")
    label = serializers.CharField(allow_blank=True, required=False, allow_null=True)
    reasoning = serializers.CharField(allow_blank=True, required=False, allow_null=True)
    source = serializers.CharField(allow_blank=True, required=False,  # absent (no key) for a box from the text
                                   help_text='"cam": from the expert model\'s class-activation map; else from the text')


class DraftOodSerializer(serializers.Serializer):
    """The out-of-distribution check of the draft's input (inference/ood.py): marked or withheld, why, the text."""

    action = serializers.CharField(allow_blank=True)
    reasons = serializers.ListField(child=serializers.CharField())
    warning = serializers.CharField(allow_blank=True, allow_null=True)


class SimilarImageSerializer(serializers.Serializer):
    id = serializers.CharField()
    display_url = serializers.CharField()


class SimilarCaseSerializer(serializers.Serializer):
    """A case of the trial's reference library like this one (issue 21 item 2): similarity, report, images."""

    rank = serializers.IntegerField()
    score = serializers.FloatField(help_text="Cosine similarity of the embeddings (1 = identical)")
    report = serializers.CharField(allow_blank=True)
    images = SimilarImageSerializer(many=True)


class DraftCalibrationSerializer(serializers.Serializer):
    """The expert-model calibration behind ``calibrated_probabilities`` (docs/calibration.md)."""

    n_cases = serializers.IntegerField()
    method = serializers.CharField(allow_blank=True)
    same_trial = serializers.BooleanField(help_text="fitted on this trial's reference cases")
    label = serializers.CharField()


class DraftSerializer(serializers.Serializer):
    findings_text = serializers.CharField(allow_blank=True)
    impression_text = serializers.CharField(allow_blank=True)
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="the expert model's raw output")
    calibrated_probabilities = serializers.DictField(
        child=serializers.FloatField(), help_text="after the expert model's calibration (what readers are shown)")
    calibration = DraftCalibrationSerializer(allow_null=True)
    source = serializers.CharField(allow_blank=True)
    boxes = DraftBoxSerializer(many=True)
    boxes_image_size = serializers.ListField(child=serializers.IntegerField(), allow_null=True, required=False)
    box_reviews = serializers.DictField(child=serializers.CharField(), required=False,
                                        help_text="The reader's decision per box id: accepted or rejected")
    ood = DraftOodSerializer()
    similar_cases = SimilarCaseSerializer(many=True, required=False)


class ReadSerializer(serializers.Serializer):
    """reading.selectors.read_payload. Only an AI-arm read with a draft carries `draft` (and, once submitted, the
    draft-change measures); every other read's answer has no such key at all."""

    public_id = serializers.CharField()
    trial = serializers.CharField()
    case = serializers.CharField()
    arm = ReadArmSerializer()
    status = serializers.ChoiceField(choices=Read.Status.choices)
    findings = ReadFindingSerializer(many=True)
    report = SavedReportSerializer()
    opened_at = serializers.CharField(allow_null=True)
    submitted_at = serializers.CharField(allow_null=True)
    autosaved_at = serializers.CharField(allow_null=True)
    active_seconds = serializers.FloatField()
    wall_seconds = serializers.FloatField(allow_null=True)
    images = ImageEntrySerializer(many=True)
    urls = ReadUrlsSerializer()
    draft = DraftSerializer(required=False)
    draft_edit_distance = serializers.FloatField(required=False)
    flipped_findings = serializers.ListField(child=serializers.CharField(), required=False)


class SubmittedReadSerializer(ReadSerializer):
    already_submitted = serializers.BooleanField(help_text="True when the read had been submitted before")


class ReaderWorklistCountsSerializer(serializers.Serializer):
    todo = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    done = serializers.IntegerField()
    waiting = serializers.IntegerField()
    total = serializers.IntegerField()


class WorklistReadSerializer(serializers.Serializer):
    public_id = serializers.CharField()
    position = serializers.IntegerField()
    case = serializers.CharField()
    arm = serializers.CharField()
    status = serializers.ChoiceField(choices=Read.Status.choices)
    url = serializers.CharField()
    api_url = serializers.CharField()


class WaitingReadSerializer(serializers.Serializer):
    case = serializers.CharField()
    arm = serializers.CharField()
    reason = serializers.CharField()
    available_from = serializers.CharField(allow_null=True)


class ReaderWorklistSerializer(serializers.Serializer):
    """reading.selectors.worklist_payload."""

    trial = serializers.CharField()
    counts = ReaderWorklistCountsSerializer()
    next = serializers.CharField(allow_null=True, help_text="public_id of the read to open next")
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    reads = WorklistReadSerializer(many=True)
    waiting = WaitingReadSerializer(many=True)


class HeartbeatSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Read.Status.choices)
    active_seconds = serializers.FloatField()
    submitted = serializers.BooleanField()


class AutosaveSerializer(HeartbeatSerializer):
    autosaved_at = serializers.CharField(allow_null=True)


class AmendmentInputSerializer(serializers.Serializer):
    """The amended report (complete, as at submit) and the reason for the change (required)."""

    findings_text = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                          max_length=services.TEXT_MAX)
    impression_text = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                            max_length=services.TEXT_MAX)
    finding_marks = serializers.DictField(child=MarkSerializer(), required=False, allow_null=True,
                                          help_text="{finding code: {present, confidence}}")
    reason = serializers.CharField(max_length=services.REASON_MAX, help_text="Why the submitted read is changed")

    def to_internal_value(self, data):
        # The reason here; the report by the service's rules (services.clean_report, complete as at submit), so the
        # 400 says the same words as a submit.
        if not isinstance(data, dict):
            data = {}
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("Give the reason for the amendment.")
        report = services.clean_report(self.context["trial"], data, complete=True)
        return {"report": report, "reason": reason.strip()}


class AmendmentSerializer(serializers.Serializer):
    """One amendment of a read: the version before and after (the read keeps its first submission)."""

    read_id = serializers.CharField()
    number = serializers.IntegerField()
    amended_as = serializers.CharField(help_text="reader or coordinator")
    reason = serializers.CharField()
    created_at = serializers.CharField()
    previous = SavedReportSerializer()
    amended = SavedReportSerializer()
    already_amended = serializers.BooleanField(help_text="True when this repeats the latest amendment")
