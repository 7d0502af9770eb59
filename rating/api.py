"""Expert rating API under /api/rating/<trial_code>/... Same payloads as the pages (built by
rating.selectors, already blinded); writes go through rating.services."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from trial.models import Trial

from . import selectors, services

ANSWER_FIELDS = ("preference", "quality_a", "quality_b", "comment", "blinding_guess")


class AnswerSerializer(serializers.Serializer):
    """Documentation only: validation happens in the service, which gives the clear messages."""

    preference = serializers.ChoiceField(choices=["A", "B", "none"], required=False, allow_blank=True)
    quality_a = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    quality_b = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True)
    blinding_guess = serializers.ChoiceField(
        choices=["A", "B", "not_a", "dont_know"], required=False, allow_blank=True,
        help_text="Asked when the trial measures blinding (task.guess.asked): which report the expert thinks was "
                  "written with AI assistance (a single report: A yes, not_a no); required to submit then")


def _answer(request) -> dict:
    data = request.data
    if hasattr(data, "getlist"):  # form-encoded
        return {k: data.get(k) for k in data}
    if not isinstance(data, dict):
        from core.errors import InvalidInput

        raise InvalidInput("Send the answer as a JSON object.")
    return dict(data)


class _RatingView(APIView):
    permission_classes = [IsAuthenticated]

    def trial(self, trial_code: str) -> Trial:
        return get_object_or_404(Trial, code=trial_code)

    def rating(self, trial_code: str, public_id: str):
        return selectors.rating_for_expert(self.request.user, self.trial(trial_code), public_id)


class WorklistView(_RatingView):
    @extend_schema(operation_id="rating_worklist", responses=dict, summary="The expert's rating worklist with progress",
                   parameters=[
                       OpenApiParameter("page", int, description=f"page of {selectors.WORKLIST_PAGE_SIZE} tasks")
                   ])
    def get(self, request, trial_code: str):
        page = request.query_params.get("page")
        return Response(selectors.worklist_payload(request.user, self.trial(trial_code), page=page))


class TaskView(_RatingView):
    @extend_schema(operation_id="rating_task", responses=dict,
                   summary="One blinded rating task (reports A and B, images, saved answer)")
    def get(self, request, trial_code: str, public_id: str):
        return Response(selectors.task_payload(self.rating(trial_code, public_id)))


class OpenView(_RatingView):
    @extend_schema(operation_id="rating_open", request=None, responses=dict, summary="Open (or resume) a task")
    def post(self, request, trial_code: str, public_id: str):
        rating = services.open_rating(request.user, self.rating(trial_code, public_id))
        return Response(selectors.task_payload(rating))


class AutosaveView(_RatingView):
    @extend_schema(operation_id="rating_autosave", request=AnswerSerializer, responses=dict,
                   summary="Save a partial answer")
    def post(self, request, trial_code: str, public_id: str):
        rating = services.autosave_rating(request.user, self.rating(trial_code, public_id), _answer(request))
        return Response({"saved": True, "status": rating.status})


class SubmitView(_RatingView):
    @extend_schema(operation_id="rating_submit", request=AnswerSerializer, responses=dict,
                   summary="Submit the rating (once)")
    def post(self, request, trial_code: str, public_id: str):
        trial = self.trial(trial_code)
        rating, created = services.submit_rating(request.user, self.rating(trial_code, public_id), _answer(request))
        nxt = selectors.next_task_id(request.user, trial)
        return Response({"submitted": True, "already_submitted": not created, "status": rating.status, "next": nxt})
