"""The standalone arena's API under /api/arena/<trial_code>/... (issue 20 item 1; docs/ai-evaluation.md).

Experts: their available arena tasks, one task (drafts A and B, blinded by rating.selectors.arena_task_payload),
open, autosave, submit. Coordinators: the arena's model versions (``setup``) and the draw of its tasks (``draw``);
both name model versions, so they are refused to anyone who also reads or rates in the trial (trial.blinding)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.errors import InvalidInput
from inference.models import ModelVersion
from inference.services import set_arena_model_versions
from trial.api_base import TrialScopedAPIView, valid
from trial.blinding import NotBlindedParticipant
from trial.models import Membership
from trial.permissions import Role, TrialRolePermission
from trial.signatures import submission_signature

from . import selectors, services
from .api import request_answer
from .models import ArenaTask
from .serializers import (
    ArenaAnswerSerializer,
    ArenaDrawInputSerializer,
    ArenaDrawSerializer,
    ArenaSavedSerializer,
    ArenaSetupInputSerializer,
    ArenaSetupSerializer,
    ArenaSubmittedSerializer,
    ArenaTaskSerializer,
    ArenaWorklistSerializer,
    RatingWorklistQuerySerializer,
)


class _ExpertView(TrialScopedAPIView):
    permission_classes = [IsAuthenticated]  # the selectors check the expert's membership and the blinding rule

    def get_task(self, public_id: str) -> ArenaTask:
        return selectors.arena_task_for_expert(self.request.user, self.get_trial(), public_id)


class ArenaWorklistView(_ExpertView):
    @extend_schema(operation_id="arena_worklist", parameters=[RatingWorklistQuerySerializer],
                   responses=ArenaWorklistSerializer, summary="The expert's available arena tasks with progress")
    def get(self, request, trial_code: str):
        q = valid(RatingWorklistQuerySerializer, request.query_params)
        payload = selectors.arena_worklist_payload(request.user, self.get_trial(), page=q.get("page"))
        return Response(ArenaWorklistSerializer(payload).data)


class ArenaTaskView(_ExpertView):
    @extend_schema(operation_id="arena_task", responses=ArenaTaskSerializer,
                   summary="One blinded arena task (drafts A and B, images, saved answer)")
    def get(self, request, trial_code: str, public_id: str):
        # Receiving the drafts is seeing them: stamped as the page's GET does, so amend_rating's "arena_seen" rule
        # cannot be sidestepped by reading the task here without calling open/ (docs/ai-evaluation.md, arena).
        task = services.open_arena_task(request.user, self.get_task(public_id))
        return Response(ArenaTaskSerializer(selectors.arena_task_payload(task)).data)


class ArenaOpenView(_ExpertView):
    @extend_schema(operation_id="arena_open", request=None, responses=ArenaTaskSerializer,
                   summary="Open (or resume) an arena task")
    def post(self, request, trial_code: str, public_id: str):
        task = services.open_arena_task(request.user, self.get_task(public_id))
        return Response(ArenaTaskSerializer(selectors.arena_task_payload(task)).data)


class ArenaAutosaveView(_ExpertView):
    @extend_schema(operation_id="arena_autosave", request=ArenaAnswerSerializer, responses=ArenaSavedSerializer,
                   summary="Save a partial arena answer")
    def post(self, request, trial_code: str, public_id: str):
        task = self.get_task(public_id)
        answer = valid(ArenaAnswerSerializer, request_answer(request), task=task)
        task = services.autosave_arena_task(request.user, task, answer)
        return Response(ArenaSavedSerializer({"saved": True, "status": task.status}).data)


class ArenaSubmitView(_ExpertView):
    @extend_schema(operation_id="arena_submit", request=ArenaAnswerSerializer, responses=ArenaSubmittedSerializer,
                   summary="Submit the arena judgement (once; a repeat of the same answer is a success)")
    def post(self, request, trial_code: str, public_id: str):
        data = request_answer(request)
        signature = submission_signature(data.pop("password", None))  # Trial.sign_submissions, as for ratings
        task = self.get_task(public_id)
        answer = valid(ArenaAnswerSerializer, data, task=task)
        task, created = services.submit_arena_task(request.user, task, answer, signature=signature)
        nxt = selectors.next_arena_task_id(request.user, self.get_trial())
        return Response(ArenaSubmittedSerializer({"submitted": True, "already_submitted": not created,
                                                  "status": task.status, "next": nxt}).data)


class _CoordinatorView(TrialScopedAPIView):
    permission_classes = [IsAuthenticated, TrialRolePermission, NotBlindedParticipant]
    read_roles = (Role.COORDINATOR,)
    write_roles = (Role.COORDINATOR,)


class ArenaSetupView(_CoordinatorView):
    @extend_schema(operation_id="arena_setup", responses=ArenaSetupSerializer,
                   summary="The arena's model versions and task counts (coordinators)")
    def get(self, request, trial_code: str):
        return Response(ArenaSetupSerializer(selectors.arena_summary(self.get_trial())).data)

    @extend_schema(operation_id="arena_setup_set", request=ArenaSetupInputSerializer, responses=ArenaSetupSerializer,
                   summary="Set the arena's model versions; queues their drafts for the trial's cases")
    def post(self, request, trial_code: str):
        d = valid(ArenaSetupInputSerializer, request.data)
        names = list(dict.fromkeys(d["model_versions"]))
        versions = list(ModelVersion.objects.filter(name__in=names))
        unknown = sorted(set(names) - {mv.name for mv in versions})
        if unknown:
            raise InvalidInput(f"No registered model version named {', '.join(unknown)}.")
        trial = self.get_trial()
        set_arena_model_versions(actor=request.user, trial=trial, model_versions=versions)
        return Response(ArenaSetupSerializer(selectors.arena_summary(trial)).data)


class ArenaDrawView(_CoordinatorView):
    @extend_schema(operation_id="arena_draw", request=ArenaDrawInputSerializer, responses=ArenaDrawSerializer,
                   summary="Draw the arena's tasks (idempotent: tops up; counts the drafts left out)")
    def post(self, request, trial_code: str):
        d = valid(ArenaDrawInputSerializer, request.data)
        trial = self.get_trial()
        experts = None
        if d.get("experts"):
            names = set(d["experts"])
            experts = list(Membership.objects.filter(trial=trial, role=Role.EXPERT, user__username__in=names))
            if len(experts) != len(names):
                raise InvalidInput("Every arena expert must be an expert of this trial.")
        draw = services.create_arena_tasks(actor=request.user, trial=trial, sample_size=d.get("sample_size"),
                                           experts=experts)
        return Response(ArenaDrawSerializer(draw).data)
