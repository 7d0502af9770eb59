"""REST API for case import: DICOM files (one result per file) and reference standards (all rows or none)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from trial.api_base import TrialScopedViewSet, valid

from .serializers import (
    ImportRequestSerializer,
    ImportResponseSerializer,
    ImportResultSerializer,
    ReferenceCsvSerializer,
    ReferenceImportedSerializer,
    ReferenceRefusedSerializer,
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
        d = valid(ImportRequestSerializer, request.data, trial=trial)
        results = [r.as_dict() for r in import_uploads(request.user, trial, d["center"], d["files"])]
        refused = sum(r["status"] == "refused" for r in results)
        code = 201 if not refused else (400 if refused == len(results) else 207)
        return Response(ImportResponseSerializer({"results": results}).data, status=code)


class ReferenceViewSet(TrialScopedViewSet):
    """POST a reference-standard CSV as text (`csv`); row-level errors, all rows or none."""

    serializer_class = ReferenceCsvSerializer

    @extend_schema(request=ReferenceCsvSerializer,
                   responses={200: ReferenceImportedSerializer, 400: ReferenceRefusedSerializer})
    def create(self, request, trial_code=None):
        d = valid(ReferenceCsvSerializer, request.data)
        result = import_reference_csv(request.user, self.get_trial(), d["csv"])
        if result.errors:
            return Response(ReferenceRefusedSerializer({"code": "invalid_rows", "errors": result.errors}).data,
                            status=400)
        return Response(ReferenceImportedSerializer({"updated": result.updated}).data, status=200)
