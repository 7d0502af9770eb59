"""REST API for readers (issue 4): worklist, read detail, open, heartbeat, autosave, submit; amend (issue 18).

Session or token auth (project defaults). Reads are addressed by their opaque public_id; another reader's read
is the 404 of an unknown id (reading.selectors.read_for_reader, which checks the reader's membership: it needs it).
Service errors become {code, detail} with 400/403/409 (core.api_errors). An unassisted read's responses carry no
draft field at all (reading.selectors.read_payload; ReadSerializer's draft fields are optional).
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.serializers import represent
from trial.api_base import TrialScopedAPIView, json_object, valid
from trial.signatures import submission_signature

from . import selectors, services
from .models import Read
from .serializers import (
    AmendmentInputSerializer,
    AmendmentSerializer,
    AutosaveSerializer,
    HeartbeatInputSerializer,
    HeartbeatSerializer,
    ReaderWorklistQuerySerializer,
    ReaderWorklistSerializer,
    ReadSerializer,
    ReportInputSerializer,
    SubmittedReadSerializer,
)


class WorklistView(TrialScopedAPIView):
    permission_classes = [IsAuthenticated]  # the selector checks the reader's membership (it needs it)

    @extend_schema(operation_id="reading_worklist", parameters=[ReaderWorklistQuerySerializer],
                   responses=ReaderWorklistSerializer, summary="The reader's worklist: counts, next, one page of reads")
    def get(self, request, trial_code: str):
        q = valid(ReaderWorklistQuerySerializer, request.query_params)
        payload = selectors.worklist_payload(request.user, self.get_trial(), page=q.get("page"))
        return Response(represent(ReaderWorklistSerializer, payload))


class _ReadView(APIView):
    """One of the reader's own reads, by its opaque id."""

    permission_classes = [IsAuthenticated]

    def get_read(self, public_id: str) -> Read:
        return selectors.read_for_reader(self.request.user, public_id)


class ReadDetailView(_ReadView):
    @extend_schema(operation_id="reading_read", responses=ReadSerializer,
                   summary="The read (no draft field outside AI arms)")
    def get(self, request, public_id: str):
        return Response(represent(ReadSerializer, selectors.read_payload(self.get_read(public_id))))


class OpenView(_ReadView):
    @extend_schema(operation_id="reading_open", request=None, responses=ReadSerializer, summary="Open (or resume)")
    def post(self, request, public_id: str):
        read = services.open_read(request.user, self.get_read(public_id))
        return Response(represent(ReadSerializer, selectors.read_payload(read)))


class HeartbeatView(_ReadView):
    @extend_schema(operation_id="reading_heartbeat", request=HeartbeatInputSerializer, responses=HeartbeatSerializer,
                   summary="Credit active seconds")
    def post(self, request, public_id: str):
        d = valid(HeartbeatInputSerializer, json_object(request))
        # By public id: the service finds, checks and locks the read in one query (issue 19: <= 3 queries).
        read = services.heartbeat(request.user, public_id, d.get("seconds"))
        return Response(HeartbeatSerializer({"status": read.status, "active_seconds": round(read.active_seconds, 1),
                                             "submitted": read.is_submitted}).data)


class AutosaveView(_ReadView):
    @extend_schema(operation_id="reading_autosave", request=ReportInputSerializer, responses=AutosaveSerializer,
                   summary="Save the report in progress")
    def post(self, request, public_id: str):
        data = json_object(request)
        # By public id, in one locked query (issue 19). The input is checked by the service with the read's trial,
        # by the same function ReportInputSerializer calls (services.clean_report): same rules, same 400 body.
        read = services.autosave(request.user, public_id, data, seconds=data.get("seconds"))
        return Response(AutosaveSerializer({
            "status": read.status, "autosaved_at": selectors._iso(read.autosaved_at), "submitted": read.is_submitted,
            "active_seconds": round(read.active_seconds, 1)}).data)


def light_heartbeat(request, data: dict, public_id: str) -> dict:
    """HeartbeatView's answer through the light lane (core.light_api): the same service and body."""
    read = services.heartbeat(request.user, public_id, data.get("seconds"))
    return represent(HeartbeatSerializer, {"status": read.status, "active_seconds": round(read.active_seconds, 1),
                                             "submitted": read.is_submitted})


def light_autosave(request, data: dict, public_id: str) -> dict:
    """AutosaveView's answer through the light lane (core.light_api): the same service and body."""
    read = services.autosave(request.user, public_id, data, seconds=data.get("seconds"))
    return represent(AutosaveSerializer, {
        "status": read.status, "autosaved_at": selectors._iso(read.autosaved_at), "submitted": read.is_submitted,
        "active_seconds": round(read.active_seconds, 1)})


class SubmitView(_ReadView):
    @extend_schema(operation_id="reading_submit", request=ReportInputSerializer, responses=SubmittedReadSerializer,
                   summary="Submit the read; already_submitted on a repeat")
    def post(self, request, public_id: str):
        data = dict(json_object(request))
        trial = selectors.own_read_trial(request.user, public_id)  # 404 / 403 as get_read; the service locks it
        signature = submission_signature(data.pop("password", None))
        # The form only: completeness is the service's (a repeated submit is answered with the saved read).
        d = valid(ReportInputSerializer, data, trial=trial)
        read, created = services.submit_read(request.user, public_id, d, seconds=d.get("seconds"),
                                             signature=signature)
        payload = {**selectors.read_payload(read), "already_submitted": not created}
        return Response(represent(SubmittedReadSerializer, payload))


class AmendView(APIView):
    """Amend a submitted read (issue 18 item 2): its reader, or a coordinator of the trial, with a reason. The read
    keeps its first submission; the answer is the amendment, with the version before and after."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="reading_amend", request=AmendmentInputSerializer, responses=AmendmentSerializer,
                   summary="Amend a submitted read (reason required); already_amended on a repeat")
    def post(self, request, public_id: str):
        read = selectors.read_for_amendment(request.user, public_id)
        d = valid(AmendmentInputSerializer, json_object(request), trial=read.case.trial)
        amendment, created = services.amend_read(actor=request.user, read=read, report=d["report"], reason=d["reason"])
        return Response(AmendmentSerializer({
            "read_id": read.public_id, "number": amendment.number, "amended_as": amendment.amended_as,
            "reason": amendment.reason, "created_at": selectors._iso(amendment.created_at),
            "previous": amendment.previous, "amended": amendment.amended, "already_amended": not created}).data)
