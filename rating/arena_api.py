"""The standalone arena's API under /api/arena/<trial_code>/... (issue 20 item 1; docs/ai-evaluation.md).

Experts: their available arena tasks, one task (drafts A and B, blinded by rating.selectors.arena_task_payload),
open, autosave, submit, amend. Coordinators: the arena's model versions (``setup``) and the draw of its tasks
(``draw``); both name model versions, so they are refused to anyone who also reads or rates in the trial
(trial.blinding); and ``amend``, any task's, under the same rule (rating.selectors.arena_task_for_amendment)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
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
    ArenaAmendmentInputSerializer,
    ArenaAmendmentSerializer,
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

# The selectors check the expert's membership and the blinding rule (arena_task_for_expert: 404 until the expert's
# rating tasks of the case are submitted). A GET of the task records the opening, as the page's GET does: receiving
# the drafts is seeing them, so amend_rating's "arena_seen" rule cannot be sidestepped by reading the task without
# calling open/ (docs/ai-evaluation.md, arena).
ARENA = TaskKind(
    get=selectors.arena_task_for_expert, payload=selectors.arena_task_payload,
    worklist_payload=selectors.arena_worklist_payload, next_id=selectors.next_arena_task_id,
    open=services.open_arena_task, autosave=services.autosave_arena_task, submit=services.submit_arena_task,
    answer=ArenaAnswerSerializer, answer_context="task", task=ArenaTaskSerializer, worklist=ArenaWorklistSerializer,
    saved=ArenaSavedSerializer, submitted=ArenaSubmittedSerializer, open_on_get=True)


class _ExpertView(BlindedTaskView):
    kind = ARENA


@extend_schema_view(get=extend_schema(
    operation_id="arena_worklist", parameters=[RatingWorklistQuerySerializer], responses=ArenaWorklistSerializer,
    summary="The expert's available arena tasks with progress"))
class ArenaWorklistView(_ExpertView, WorklistEndpoint):
    pass


@extend_schema_view(get=extend_schema(
    operation_id="arena_task", responses=ArenaTaskSerializer,
    summary="One blinded arena task (drafts A and B, images, saved answer)"))
class ArenaTaskView(_ExpertView, TaskEndpoint):
    pass


@extend_schema_view(post=extend_schema(operation_id="arena_open", request=None, responses=ArenaTaskSerializer,
                                       summary="Open (or resume) an arena task"))
class ArenaOpenView(_ExpertView, OpenEndpoint):
    pass


@extend_schema_view(post=extend_schema(operation_id="arena_autosave", request=ArenaAnswerSerializer,
                                       responses=ArenaSavedSerializer, summary="Save a partial arena answer"))
class ArenaAutosaveView(_ExpertView, AutosaveEndpoint):
    pass


@extend_schema_view(post=extend_schema(
    operation_id="arena_submit", request=ArenaAnswerSerializer, responses=ArenaSubmittedSerializer,
    summary="Submit the arena judgement (once; a repeat of the same answer is a success)"))
class ArenaSubmitView(_ExpertView, SubmitEndpoint):
    pass


class ArenaAmendView(_ExpertView):
    """Amend a submitted arena judgement: its expert, or a coordinator of the trial who neither reads nor rates in it
    (selectors.arena_task_for_amendment), with a reason, before lock; signed where the trial signs submissions. The
    task keeps its first submission; the answer is the amendment, before and after, in A/B terms."""

    @extend_schema(operation_id="arena_amend", request=ArenaAmendmentInputSerializer,
                   responses=ArenaAmendmentSerializer,
                   summary="Amend a submitted arena judgement (its expert or a coordinator; reason required); "
                           "already_amended on a repeat")
    def post(self, request, trial_code: str, public_id: str):
        data = request_answer(request)
        signature = submission_signature(data.pop("password", None))
        task = selectors.arena_task_for_amendment(request.user, self.get_trial(), public_id)
        d = valid(ArenaAmendmentInputSerializer, data, task=task)
        amendment, created = services.amend_arena_task(actor=request.user, task=task, answer=d["answer"],
                                                       reason=d["reason"], signature=signature)
        return Response(ArenaAmendmentSerializer({
            "task_id": task.public_id, "number": amendment.number, "amended_as": amendment.amended_as,
            "reason": amendment.reason,
            "created_at": amendment.created_at.isoformat(), "previous": amendment.previous,
            "amended": amendment.amended, "already_amended": not created}).data)


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
