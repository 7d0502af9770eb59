"""What the expert's two blinded task APIs share (rating/api.py: rating tasks; rating/arena_api.py: arena tasks):
the worklist, task, open, autosave and submit endpoints, written once here.

Each API describes its kind of task in a ``TaskKind`` (its selectors, services and serializers) and declares its
operations (ids, serializers, summaries) with ``extend_schema_view`` over these endpoints. The blinding stays in the
kind's selectors, unchanged: ``get`` answers only the expert's own available task (else 404) and ``payload`` is the
blinded view the page shows (docs/ai-evaluation.md for the arena's rule)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.errors import InvalidInput
from core.serializers import represent
from trial.api_base import TrialScopedAPIView, valid
from trial.signatures import submission_signature

from .serializers import RatingWorklistQuerySerializer


def request_answer(request) -> dict:
    """The answer in a request body (a JSON object or a form) as a plain dict: the rating and arena APIs."""
    data = request.data
    if hasattr(data, "getlist"):  # form-encoded
        return {k: data.get(k) for k in data}
    if not isinstance(data, dict):
        raise InvalidInput("Send the answer as a JSON object.")
    return dict(data)


@dataclass(frozen=True)
class TaskKind:
    """One kind of blinded task: how the endpoints find, show, open, save and submit it."""

    get: Callable  # (user, trial, public_id) -> task; 404 unless the expert's own available task
    payload: Callable  # (task) -> the blinded dict the page shows
    worklist_payload: Callable  # (user, trial, page=) -> dict
    next_id: Callable  # (user, trial) -> public id of the next open task, or None
    open: Callable  # services: (actor, task) -> task
    autosave: Callable  # services: (actor, task, answer) -> task
    submit: Callable  # services: (actor, task, answer, signature=) -> (task, created)
    answer: type[serializers.Serializer]
    answer_context: str  # the name the answer serializer reads the task under
    task: type[serializers.Serializer]
    worklist: type[serializers.Serializer]
    saved: type[serializers.Serializer]
    submitted: type[serializers.Serializer]
    open_on_get: bool  # a GET of the task records the opening (the arena: receiving the drafts is seeing them)


class BlindedTaskView(TrialScopedAPIView):
    permission_classes = [IsAuthenticated]  # the kind's selectors check the expert's membership (and blinding)
    kind: TaskKind

    def get_task(self, public_id: str):
        return self.kind.get(self.request.user, self.get_trial(), public_id)

    def task_response(self, task) -> Response:
        return Response(represent(self.kind.task, self.kind.payload(task)))

    def answer_of(self, data: dict, task) -> dict:
        return valid(self.kind.answer, data, **{self.kind.answer_context: task})


class WorklistEndpoint(BlindedTaskView):
    def get(self, request, trial_code: str):
        q = valid(RatingWorklistQuerySerializer, request.query_params)
        payload = self.kind.worklist_payload(request.user, self.get_trial(), page=q.get("page"))
        return Response(represent(self.kind.worklist, payload))


class TaskEndpoint(BlindedTaskView):
    def get(self, request, trial_code: str, public_id: str):
        task = self.get_task(public_id)
        if self.kind.open_on_get:
            task = self.kind.open(request.user, task)
        return self.task_response(task)


class OpenEndpoint(BlindedTaskView):
    def post(self, request, trial_code: str, public_id: str):
        return self.task_response(self.kind.open(request.user, self.get_task(public_id)))


class AutosaveEndpoint(BlindedTaskView):
    def post(self, request, trial_code: str, public_id: str):
        data = request_answer(request)
        task = self.get_task(public_id)
        task = self.kind.autosave(request.user, task, self.answer_of(data, task))
        return Response(represent(self.kind.saved, {"saved": True, "status": task.status}))


class SubmitEndpoint(BlindedTaskView):
    def post(self, request, trial_code: str, public_id: str):
        data = request_answer(request)
        signature = submission_signature(data.pop("password", None))  # Trial.sign_submissions
        task = self.get_task(public_id)
        task, created = self.kind.submit(request.user, task, self.answer_of(data, task), signature=signature)
        nxt = self.kind.next_id(request.user, self.get_trial())
        return Response(represent(self.kind.submitted, {"submitted": True, "already_submitted": not created,
                                                        "status": task.status, "next": nxt}))
