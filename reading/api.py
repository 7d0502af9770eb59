"""REST API for readers (issue 4): worklist, read detail, open, heartbeat, autosave, submit.

Session or token auth (project defaults). Reads are addressed by their opaque public_id; another reader's read
is 403, an unknown id 404. Service errors become {code, detail} with 400/403/409 (core.api_errors). An
unassisted read's responses carry no draft field at all (reading.selectors.read_payload).
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import ParseError
from rest_framework.response import Response

from trial.models import Trial

from . import selectors, services


def _data(request) -> dict:
    data = request.data
    if not isinstance(data, dict):
        raise ParseError("Send a JSON object.")
    return data


def _read(request, public_id: str):
    return selectors.read_for_reader(request.user, public_id)


@extend_schema(
    parameters=[OpenApiParameter("page", int, description=f"page of {selectors.WORKLIST_PAGE_SIZE} reads")],
    responses={200: OpenApiResponse(description="The reader's worklist: counts, next, page, pages, reads")},
)
@api_view(["GET"])
def worklist(request, trial_code: str):
    trial = get_object_or_404(Trial, code=trial_code)
    return Response(selectors.worklist_payload(request.user, trial, page=request.query_params.get("page")))


@extend_schema(responses={200: OpenApiResponse(description="The read (no draft field outside AI arms)")})
@api_view(["GET"])
def detail(request, public_id: str):
    return Response(selectors.read_payload(_read(request, public_id)))


@extend_schema(request=None, responses={200: OpenApiResponse(description="The opened read")})
@api_view(["POST"])
def open_read(request, public_id: str):
    read = services.open_read(request.user, _read(request, public_id))
    return Response(selectors.read_payload(read))


@extend_schema(request={"application/json": {"type": "object", "properties": {"seconds": {"type": "number"}}}},
               responses={200: OpenApiResponse(description="Active and wall time so far")})
@api_view(["POST"])
def heartbeat(request, public_id: str):
    data = _data(request)
    # By public id: the service finds, checks and locks the read in one query (no selector round trip first).
    read = services.heartbeat(request.user, public_id, data.get("seconds"))
    return Response({"status": read.status, "active_seconds": round(read.active_seconds, 1),
                     "submitted": read.is_submitted})


@extend_schema(request={"application/json": {"type": "object"}},
               responses={200: OpenApiResponse(description="When the report was saved")})
@api_view(["POST"])
def autosave(request, public_id: str):
    data = _data(request)
    read = services.autosave(request.user, public_id, data, seconds=data.get("seconds"))
    return Response({"status": read.status, "autosaved_at": selectors._iso(read.autosaved_at),
                     "submitted": read.is_submitted, "active_seconds": round(read.active_seconds, 1)})


@extend_schema(request={"application/json": {"type": "object"}},
               responses={200: OpenApiResponse(description="The submitted read; already_submitted on a repeat")})
@api_view(["POST"])
def submit(request, public_id: str):
    data = _data(request)
    read, created = services.submit_read(request.user, _read(request, public_id), data, seconds=data.get("seconds"))
    return Response({**selectors.read_payload(read), "already_submitted": not created})
