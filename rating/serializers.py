"""Input and output serializers of the expert rating API (rating/api.py).

The answer is checked by rating.services.clean_answer, the one set of rules (it needs the task: a single report
has no preference, the blinding question is asked only when the trial measures blinding), which raises
InvalidInput: a refused answer is 400 {code: "invalid", detail} in the same words as on the rating page. The
completeness a submit needs, and what a submitted task accepts, stay in the service.
"""
from __future__ import annotations

from rest_framework import serializers

from imaging.serializers import ImageEntrySerializer

from . import services
from .models import ArenaTask, Rating


class AnswerSerializer(serializers.Serializer):
    preference = serializers.ChoiceField(choices=["A", "B", "none"], required=False, allow_blank=True,
                                         allow_null=True)
    quality_a = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    quality_b = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=services.COMMENT_MAX)
    blinding_guess = serializers.ChoiceField(
        choices=["A", "B", "not_a", "dont_know"], required=False, allow_blank=True, allow_null=True,
        help_text="Asked when the trial measures blinding (task.guess.asked): which report the expert thinks was "
                  "written with AI assistance (a single report: A yes, not_a no); required to submit then")

    def to_internal_value(self, data):
        # The service's rules for this task (context["rating"]); a partial answer passes, submit checks the rest.
        return services.clean_answer(self.context["rating"], data, complete=False)


class RatingWorklistQuerySerializer(serializers.Serializer):
    page = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        help_text="Page number of the worklist; a number out of range gives the last page, anything else the first.")


class RatingProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    percent = serializers.IntegerField()


class WorklistTaskSerializer(serializers.Serializer):
    id = serializers.CharField()
    position = serializers.IntegerField()
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=["single", "pair"])
    status = serializers.ChoiceField(choices=Rating.Status.choices)
    status_label = serializers.CharField()


class _WorklistSerializer(serializers.Serializer):
    """What the rating and arena worklists share (rating.blinded_api); each adds its ``tasks``."""

    trial = serializers.CharField()
    progress = RatingProgressSerializer()
    next = serializers.CharField(allow_null=True, help_text="id of the task to open next")
    page = serializers.IntegerField()
    pages = serializers.IntegerField()


class RatingWorklistSerializer(_WorklistSerializer):
    """rating.selectors.worklist_payload."""

    tasks = WorklistTaskSerializer(many=True)


class SavedAnswerSerializer(serializers.Serializer):
    preference = serializers.CharField(allow_null=True)
    quality_a = serializers.IntegerField(allow_null=True)
    quality_b = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)
    blinding_guess = serializers.CharField(allow_null=True)


class GuessQuestionSerializer(serializers.Serializer):
    asked = serializers.BooleanField()
    question = serializers.CharField(allow_blank=True)
    choices = serializers.JSONField()


class TaskSerializer(serializers.Serializer):
    """rating.selectors.task_payload: the blinded reports A (and B), the images, the saved answer."""

    id = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=["single", "pair"])
    status = serializers.ChoiceField(choices=Rating.Status.choices)
    status_label = serializers.CharField()
    submitted = serializers.BooleanField()
    reports = serializers.ListField(
        child=serializers.JSONField(),
        help_text="[{label, findings: [sentence], impression: [sentence], "
                  "marks: [{code, label, present, confidence}]}]")
    images = ImageEntrySerializer(many=True)
    answer = SavedAnswerSerializer()
    scale = serializers.JSONField()
    preferences = serializers.JSONField()
    guess = GuessQuestionSerializer()


class SavedSerializer(serializers.Serializer):
    saved = serializers.BooleanField()
    status = serializers.ChoiceField(choices=Rating.Status.choices)


class SubmittedSerializer(serializers.Serializer):
    submitted = serializers.BooleanField()
    already_submitted = serializers.BooleanField()
    status = serializers.ChoiceField(choices=Rating.Status.choices)
    next = serializers.CharField(allow_null=True, help_text="id of the next task, or null when none is left")


class RatingAmendmentInputSerializer(serializers.Serializer):
    """The parts of the answer that change (the rest is kept) and the reason for the change (required)."""

    preference = serializers.ChoiceField(choices=["A", "B", "none"], required=False, allow_blank=True,
                                         allow_null=True)
    quality_a = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    quality_b = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=services.COMMENT_MAX)
    blinding_guess = serializers.ChoiceField(choices=["A", "B", "not_a", "dont_know"], required=False,
                                             allow_blank=True, allow_null=True)
    reason = serializers.CharField(max_length=services.REASON_MAX, help_text="Why the submitted rating is changed")

    def to_internal_value(self, data):
        # The reason first, then the answer by the service's rules (clean_answer), so a 400 says the same words as
        # the rating page; completeness against the current version is the service's.
        if not isinstance(data, dict):
            data = {}
        reason = services.clean_reason(data.get("reason"))
        answer = {k: v for k, v in data.items() if k != "reason"}
        return {"answer": services.clean_answer(self.context["rating"], answer, complete=False), "reason": reason}


class RatingAmendedAnswerSerializer(serializers.Serializer):
    preference = serializers.CharField(allow_blank=True, allow_null=True)
    quality_a = serializers.IntegerField(allow_null=True)
    quality_b = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)
    blinding_guess = serializers.CharField(allow_blank=True, allow_null=True)


class RatingAmendmentSerializer(serializers.Serializer):
    """One amendment of a rating: the answer before and after, in the task's A/B terms (the rating keeps its
    first submission)."""

    rating_id = serializers.CharField()
    number = serializers.IntegerField()
    amended_as = serializers.CharField(help_text="expert or coordinator")
    reason = serializers.CharField()
    created_at = serializers.CharField()
    previous = RatingAmendedAnswerSerializer()
    amended = RatingAmendedAnswerSerializer()
    already_amended = serializers.BooleanField(help_text="True when this repeats the latest amendment")


# -- the standalone arena (issue 20 item 1) ---------------------------------------------------------------------
class ArenaAnswerSerializer(serializers.Serializer):
    """An arena answer, checked by rating.services.clean_arena_answer (the page's rules, the same words)."""

    preference = serializers.ChoiceField(choices=["A", "B", "tie"], required=False, allow_blank=True, allow_null=True,
                                         help_text="A, B or tie (required to submit)")
    quality_a = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    quality_b = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=services.COMMENT_MAX)

    def to_internal_value(self, data):
        return services.clean_arena_answer(self.context["task"], data, complete=False)


class ArenaWorklistTaskSerializer(serializers.Serializer):
    id = serializers.CharField()
    position = serializers.IntegerField()
    label = serializers.CharField()
    status = serializers.ChoiceField(choices=ArenaTask.Status.choices)
    status_label = serializers.CharField()


class ArenaWorklistSerializer(_WorklistSerializer):
    """rating.selectors.arena_worklist_payload: the expert's available arena tasks."""

    tasks = ArenaWorklistTaskSerializer(many=True)


class ArenaSavedAnswerSerializer(serializers.Serializer):
    preference = serializers.CharField(allow_null=True)
    quality_a = serializers.IntegerField(allow_null=True)
    quality_b = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)


class ArenaTaskSerializer(serializers.Serializer):
    """rating.selectors.arena_task_payload: drafts A and B (normalised text only), the images, the saved answer."""

    id = serializers.CharField()
    label = serializers.CharField()
    status = serializers.ChoiceField(choices=ArenaTask.Status.choices)
    status_label = serializers.CharField()
    submitted = serializers.BooleanField()
    drafts = serializers.ListField(child=serializers.JSONField(),
                                   help_text="[{label, findings: [sentence], impression: [sentence]}]")
    images = ImageEntrySerializer(many=True)
    answer = ArenaSavedAnswerSerializer()
    scale = serializers.JSONField()
    preferences = serializers.JSONField()


class ArenaSavedSerializer(SavedSerializer):
    status = serializers.ChoiceField(choices=ArenaTask.Status.choices)


class ArenaSubmittedSerializer(SubmittedSerializer):
    status = serializers.ChoiceField(choices=ArenaTask.Status.choices)
    next = serializers.CharField(allow_null=True, help_text="id of the next arena task, or null when none is left")


class ArenaSetupInputSerializer(serializers.Serializer):
    model_versions = serializers.ListField(child=serializers.CharField(max_length=120), min_length=2, max_length=20,
                                           help_text="Names of the registered model versions in the arena (2 or more)")


class ArenaSetupSerializer(serializers.Serializer):
    """The coordinator's view of the arena: its versions (``default``: the AI arms' versions) and task counts."""

    model_versions = serializers.ListField(child=serializers.CharField())
    default = serializers.BooleanField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    cases = serializers.IntegerField()


class ArenaDrawInputSerializer(serializers.Serializer):
    sample_size = serializers.IntegerField(min_value=1, required=False, allow_null=True,
                                           help_text="Limit the arena to this many cases, drawn from the secret")
    experts = serializers.ListField(child=serializers.CharField(max_length=150), required=False, allow_empty=False,
                                    help_text="Usernames of the experts who judge the arena (default: all experts)")


class ArenaDrawSerializer(serializers.Serializer):
    """rating.services.ArenaDraw."""

    versions = serializers.ListField(child=serializers.CharField())
    cases_considered = serializers.IntegerField()
    cases_in_arena = serializers.IntegerField()
    cases_without_pair = serializers.IntegerField()
    cases_short_of_panel = serializers.IntegerField()
    tasks_made = serializers.IntegerField()
    excluded_drafts = serializers.DictField(child=serializers.IntegerField(),
                                            help_text="Drafts left out, by reason: missing, queued, failed, "
                                                      "withheld, empty")


class ArenaAmendmentInputSerializer(serializers.Serializer):
    """The parts of the judgement that change (the rest is kept), the reason (required) and, where the trial signs
    submissions, the password (taken out by the view: rating.arena_api.ArenaAmendView)."""

    preference = serializers.ChoiceField(choices=["A", "B", "tie"], required=False, allow_blank=True, allow_null=True)
    quality_a = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    quality_b = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=services.COMMENT_MAX)
    reason = serializers.CharField(max_length=services.REASON_MAX, help_text="Why the submitted judgement is changed")

    def to_internal_value(self, data):
        # The reason first, then the answer by the arena's rules (clean_arena_answer), in the page's words.
        if not isinstance(data, dict):
            data = {}
        reason = services.clean_reason(data.get("reason"))
        answer = {k: v for k, v in data.items() if k != "reason"}
        return {"answer": services.clean_arena_answer(self.context["task"], answer, complete=False),
                "reason": reason}


class ArenaAmendmentSerializer(serializers.Serializer):
    """One amendment of an arena judgement: the answer before and after, in the task's A/B terms."""

    task_id = serializers.CharField()
    number = serializers.IntegerField()
    amended_as = serializers.CharField(help_text="expert or coordinator")
    reason = serializers.CharField()
    created_at = serializers.CharField()
    previous = ArenaSavedAnswerSerializer()
    amended = ArenaSavedAnswerSerializer()
    already_amended = serializers.BooleanField(help_text="True when this repeats the latest amendment")
