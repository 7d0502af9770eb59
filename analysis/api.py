"""REST API for analysis runs: /api/analysis/<trial_code>/runs/ (list, create, retrieve)."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from trial.blinding import NotBlindedParticipant
from trial.models import Trial
from trial.permissions import TrialRolePermission

from . import services
from .models import AnalysisRun


class AnalysisRunSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    files = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = AnalysisRun
        fields = ["id", "status", "progress", "message", "created_at", "started_at", "finished_at", "requested_by",
                  "data_sha256", "arms_masked", "summary", "error", "status_url", "files"]
        read_only_fields = fields

    def get_files(self, run) -> list[dict]:
        code = run.trial.code
        return [{**f, "url": reverse("analysis:file", args=[code, run.pk, f["name"]])} for f in services.run_files(run)]

    def get_status_url(self, run) -> str:
        return reverse("analysis:run_status", args=[run.trial.code, run.pk])


class AnalysisRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AnalysisRunSerializer
    permission_classes = [IsAuthenticated, TrialRolePermission, NotBlindedParticipant]
    lookup_value_regex = r"\d+"

    def get_trial(self) -> Trial:
        if not hasattr(self, "_trial"):
            self._trial = get_object_or_404(Trial, code=self.kwargs["trial_code"])
        return self._trial

    def roles_for_action(self) -> tuple[str, ...]:
        return services.ANALYSIS_ROLES

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no trial in the URL
            return AnalysisRun.objects.none()
        return AnalysisRun.objects.filter(trial=self.get_trial()).select_related("trial", "requested_by")

    @extend_schema(request=None, responses={201: AnalysisRunSerializer})
    def create(self, request, trial_code=None):
        run = services.request_analysis(request.user, self.get_trial())
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)
