"""Expert rating API under /api/rating/<trial_code>/... Same payloads as the pages (built by rating.selectors,
already blinded); writes go through rating.services. The trial comes from the URL once (trial.api_base); the
selectors check the expert's membership (they need it)."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.errors import InvalidInput
from trial.api_base import TrialScopedAPIView, valid
from trial.models import Trial
from trial.signatures import submission_signature

from . import selectors, services
from .models import Rating
from .serializers import (
    AnswerSerializer,
    RatingAmendmentInputSerializer,
    RatingAmendmentSerializer,
    RatingWorklistQuerySerializer,
    RatingWorklistSerializer,
    SavedSerializer,
    SubmittedSerializer,
    TaskSerializer,
)


def request_answer(request) -> dict:
    """The answer in a request body (a JSON object or a form) as a plain dict: the rating and arena APIs."""
    data = request.data
    if hasattr(data, "getlist"):  # form-encoded
        return {k: data.get(k) for k in data}
    if not isinstance(data, dict):
        raise InvalidInput("Send the answer as a JSON object.")
    return dict(data)


class _RatingView(TrialScopedAPIView):
    permission_classes = [IsAuthenticated]  # the selectors check the expert's membership (they need it)

    def get_rating(self, public_id: str) -> Rating:
        return selectors.rating_for_expert(self.request.user, self.get_trial(), public_id)


class WorklistView(_RatingView):
    @extend_schema(operation_id="rating_worklist", parameters=[RatingWorklistQuerySerializer],
                   responses=RatingWorklistSerializer, summary="The expert's rating worklist with progress")
    def get(self, request, trial_code: str):
        q = valid(RatingWorklistQuerySerializer, request.query_params)
        payload = selectors.worklist_payload(request.user, self.get_trial(), page=q.get("page"))
        return Response(RatingWorklistSerializer(payload).data)


class TaskView(_RatingView):
    @extend_schema(operation_id="rating_task", responses=TaskSerializer,
                   summary="One blinded rating task (reports A and B, images, saved answer)")
    def get(self, request, trial_code: str, public_id: str):
        return Response(TaskSerializer(selectors.task_payload(self.get_rating(public_id))).data)


class OpenView(_RatingView):
    @extend_schema(operation_id="rating_open", request=None, responses=TaskSerializer,
                   summary="Open (or resume) a task")
    def post(self, request, trial_code: str, public_id: str):
        rating = services.open_rating(request.user, self.get_rating(public_id))
        return Response(TaskSerializer(selectors.task_payload(rating)).data)


class AutosaveView(_RatingView):
    @extend_schema(operation_id="rating_autosave", request=AnswerSerializer, responses=SavedSerializer,
                   summary="Save a partial answer")
    def post(self, request, trial_code: str, public_id: str):
        data = request_answer(request)
        rating = self.get_rating(public_id)
        answer = valid(AnswerSerializer, data, rating=rating)
        rating = services.autosave_rating(request.user, rating, answer)
        return Response(SavedSerializer({"saved": True, "status": rating.status}).data)


def light_autosave(request, data: dict, trial_code: str, public_id: str) -> dict:
    """AutosaveView's answer through the light lane (core.light_api): the same selector, rules and service."""
    rating = selectors.rating_for_expert(request.user, get_object_or_404(Trial, code=trial_code), public_id)
    rating = services.autosave_rating(request.user, rating, services.clean_answer(rating, data, complete=False))
    return SavedSerializer({"saved": True, "status": rating.status}).data


class SubmitView(_RatingView):
    @extend_schema(operation_id="rating_submit", request=AnswerSerializer, responses=SubmittedSerializer,
                   summary="Submit the rating (once)")
    def post(self, request, trial_code: str, public_id: str):
        data = request_answer(request)
        signature = submission_signature(data.pop("password", None))
        rating = self.get_rating(public_id)
        answer = valid(AnswerSerializer, data, rating=rating)
        rating, created = services.submit_rating(request.user, rating, answer, signature=signature)
        nxt = selectors.next_task_id(request.user, self.get_trial())
        return Response(SubmittedSerializer({"submitted": True, "already_submitted": not created,
                                             "status": rating.status, "next": nxt}).data)


class AmendView(_RatingView):
    """Amend a submitted rating (issue 18 item 2): its expert, or a coordinator of the trial, with a reason. The
    rating keeps its first submission; the answer is the amendment, before and after, in A/B terms (no arm)."""

    @extend_schema(operation_id="rating_amend", request=RatingAmendmentInputSerializer,
                   responses=RatingAmendmentSerializer,
                   summary="Amend a submitted rating (reason required); already_amended on a repeat")
    def post(self, request, trial_code: str, public_id: str):
        rating = selectors.rating_for_amendment(request.user, self.get_trial(), public_id)
        d = valid(RatingAmendmentInputSerializer, request_answer(request), rating=rating)
        amendment, created = services.amend_rating(actor=request.user, rating=rating, answer=d["answer"],
                                                   reason=d["reason"])
        return Response(RatingAmendmentSerializer({
            "rating_id": rating.public_id, "number": amendment.number, "amended_as": amendment.amended_as,
            "reason": amendment.reason, "created_at": amendment.created_at.isoformat(),
            "previous": amendment.previous, "amended": amendment.amended, "already_amended": not created}).data)
