"""The one API style (docs/architecture.md): class-based DRF views. Each names an input serializer that validates
what its service receives and an output serializer for what it answers, so drf-spectacular's schema is built from
the code that runs. Trial-scoped views find the trial from the URL's ``trial_code`` once (``get_trial``) and check
the role once (``TrialRolePermission``, from ``read_roles`` / ``write_roles``).

It lives in `trial`, not `core`: the trial lookup needs the Trial model, and core imports no app of ours.
"""
from __future__ import annotations

from typing import Any

from rest_framework import serializers, viewsets
from rest_framework.exceptions import ParseError
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from .models import Trial
from .permissions import Role, TrialRolePermission
from .selectors import trial_or_404


def valid(serializer_cls: type[serializers.Serializer], data: Any, **context: Any) -> Any:
    """The input serializer's validated data; a refusal raises (400 with the serializer's or service's body)."""
    s = serializer_cls(data=data, context=context)
    s.is_valid(raise_exception=True)
    return s.validated_data


def json_object(request) -> dict:
    """The request body, which must be an object (JSON, or a form); anything else is a 400 parse error."""
    data = request.data
    if not isinstance(data, dict):
        raise ParseError("Send a JSON object.")
    return data


class TrialScoped:
    """Mixin: the trial named by the URL's ``trial_code``, looked up once per request (404 when unknown), and the
    roles the request's method needs in it (checked by TrialRolePermission when it is in permission_classes;
    views whose selector checks the membership itself, because it needs it, list only IsAuthenticated)."""

    permission_classes = [IsAuthenticated, TrialRolePermission]
    read_roles: tuple[str, ...] = (Role.COORDINATOR,)
    write_roles: tuple[str, ...] = (Role.COORDINATOR,)

    def get_trial(self) -> Trial:
        if not hasattr(self, "_trial"):
            self._trial = trial_or_404(self.kwargs["trial_code"])
        return self._trial

    def roles_for_action(self) -> tuple[str, ...]:
        return self.read_roles if self.request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles


class TrialScopedViewSet(TrialScoped, viewsets.GenericViewSet):
    """Nested under /api/trials/{trial_code}/...; coordinators only unless `read_roles` says otherwise."""


class TrialScopedAPIView(TrialScoped, APIView):
    """Operations under a URL with ``trial_code`` that name their serializers per method (extend_schema)."""
