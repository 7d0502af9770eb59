"""Expert rating API under /api/rating/<trial_code>/... Same payloads as the pages (built by rating.selectors,
already blinded); writes go through rating.services. The trial comes from the URL once (trial.api_base); the
selectors check the expert's membership (they need it)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.response import Response

from trial.api_base import valid
from trial.selectors import trial_or_404

from . import selectors, services
from .blinded_api import (
    AutosaveEndpoint,
    BlindedTaskView,
    OpenEndpoint,
    SubmitEndpoint,
    TaskEndpoint,
    TaskKind,
    WorklistEndpoint,
    request_answer,
)
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

RATING = TaskKind(
    get=selectors.rating_for_expert, payload=selectors.task_payload, worklist_payload=selectors.worklist_payload,
    next_id=selectors.next_task_id, open=services.open_rating, autosave=services.autosave_rating,
    submit=services.submit_rating, answer=AnswerSerializer, answer_context="rating", task=TaskSerializer,
    worklist=RatingWorklistSerializer, saved=SavedSerializer, submitted=SubmittedSerializer, open_on_get=False)


class _RatingView(BlindedTaskView):
    kind = RATING


@extend_schema_view(get=extend_schema(
    operation_id="rating_worklist", parameters=[RatingWorklistQuerySerializer], responses=RatingWorklistSerializer,
    summary="The expert's rating worklist with progress"))
class WorklistView(_RatingView, WorklistEndpoint):
    pass


@extend_schema_view(get=extend_schema(
    operation_id="rating_task", responses=TaskSerializer,
    summary="One blinded rating task (reports A and B, images, saved answer)"))
class TaskView(_RatingView, TaskEndpoint):
    pass


@extend_schema_view(post=extend_schema(operation_id="rating_open", request=None, responses=TaskSerializer,
                                       summary="Open (or resume) a task"))
class OpenView(_RatingView, OpenEndpoint):
    pass


@extend_schema_view(post=extend_schema(operation_id="rating_autosave", request=AnswerSerializer,
                                       responses=SavedSerializer, summary="Save a partial answer"))
class AutosaveView(_RatingView, AutosaveEndpoint):
    pass


def light_autosave(request, data: dict, trial_code: str, public_id: str) -> dict:
    """AutosaveView's answer through the light lane (core.light_api): the same rules and service; the expert's own
    open task in two statements (services.autosave_own_rating), anything else as AutosaveView does it."""
    status = services.autosave_own_rating(request.user, trial_code=trial_code, public_id=public_id, data=data)
    if status is None:
        rating = selectors.rating_for_expert(request.user, trial_or_404(trial_code), public_id)
        status = services.autosave_rating(request.user, rating,
                                          services.clean_answer(rating, data, complete=False)).status
    return SavedSerializer({"saved": True, "status": status}).data


@extend_schema_view(post=extend_schema(operation_id="rating_submit", request=AnswerSerializer,
                                       responses=SubmittedSerializer, summary="Submit the rating (once)"))
class SubmitView(_RatingView, SubmitEndpoint):
    pass


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
