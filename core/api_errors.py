"""DRF exception handler: service errors become 4xx with a machine-readable `code`."""
from django.core.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from .errors import TrialError


def exception_handler(exc, context):
    if isinstance(exc, TrialError):
        return Response({"code": str(exc.code), "detail": exc.message}, status=exc.status)
    if isinstance(exc, PermissionDenied):
        return Response({"code": "forbidden", "detail": str(exc) or "Forbidden."}, status=403)
    response = drf_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "code" not in response.data:
        code = getattr(exc, "default_code", "error")
        response.data = {"code": code, **response.data}
    return response
