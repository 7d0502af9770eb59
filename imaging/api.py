"""REST API for case import: DICOM files (one result per file) and reference standards (all rows or none)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from trial.api import TrialScopedViewSet, _valid

from .serializers import (
    ImportRequestSerializer,
    ImportResponseSerializer,
    ImportResultSerializer,
    ReferenceCsvSerializer,
)
from .services import import_reference_csv, import_uploads


class ImportViewSet(TrialScopedViewSet):
    """POST DICOM files (multipart, field `files`, plus `center`): one result per file, in upload order.
    201 when every file is imported or already present, 400 when none is, 207 when some are refused. Each file
    is its own transaction and no file can make the request fail: a file that breaks a parser, decoder or the
    renderer is a refusal with a reason code (docs/import.md)."""

    parser_classes = [MultiPartParser, FormParser]
    serializer_class = ImportResultSerializer

    @extend_schema(request=ImportRequestSerializer, responses={
        201: ImportResponseSerializer, 207: ImportResponseSerializer,
        400: OpenApiResponse(description="Every file refused ({results: [...]}), or a request error ({code, ...})"),
    })
    def create(self, request, trial_code=None):
        trial = self.get_trial()
        center = trial.centers.filter(code=request.data.get("center", "")).first()
        if center is None:
            raise ValidationError({"code": "invalid", "center": "Give the code of one of this trial's centers."})
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationError({"code": "invalid", "files": "Attach one or more DICOM files as `files`."})
        results = [r.as_dict() for r in import_uploads(request.user, trial, center, files)]
        refused = sum(r["status"] == "refused" for r in results)
        code = 201 if not refused else (400 if refused == len(results) else 207)
        return Response({"results": results}, status=code)


class ReferenceViewSet(TrialScopedViewSet):
    """POST a reference-standard CSV as text (`csv`); row-level errors, all rows or none."""

    serializer_class = ReferenceCsvSerializer

    @extend_schema(request=ReferenceCsvSerializer, responses=dict)
    def create(self, request, trial_code=None):
        d = _valid(ReferenceCsvSerializer, request.data)
        result = import_reference_csv(request.user, self.get_trial(), d["csv"])
        if result.errors:
            return Response({"code": "invalid_rows", "errors": result.errors}, status=400)
        return Response({"updated": result.updated}, status=200)
