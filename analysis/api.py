"""REST API for analysis runs: /api/analysis/<trial_code>/runs/ (list, create, retrieve)."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.api import PageJSONView
from trial.api_base import TrialScopedAPIView, TrialScopedViewSet, valid
from trial.blinding import NotBlindedParticipant, require_not_blinded
from trial.models import Signature
from trial.permissions import TrialRolePermission, require_role
from trial.signatures import SignatureInput

from . import services
from .models import AnalysisRun


class AnalysisRunSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username", default=None, read_only=True)
    files = serializers.SerializerMethodField()
    final_by = serializers.CharField(source="final_by.username", default=None, read_only=True, allow_null=True)
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = AnalysisRun
        fields = ["id", "status", "progress", "message", "created_at", "started_at", "finished_at", "requested_by",
                  "data_sha256", "arms_masked", "summary", "error", "status_url", "files", "final_at", "final_by"]
        read_only_fields = fields

    def get_files(self, run) -> list[dict]:
        code = run.trial.code
        return [{**f, "url": reverse("analysis:file", args=[code, run.pk, f["name"]])} for f in services.run_files(run)]

    def get_status_url(self, run) -> str:
        return reverse("analysis:run_status", args=[run.trial.code, run.pk])


class FinalInputSerializer(serializers.Serializer):
    """The statistician's electronic signature (trial.signatures): the password again (never stored), the meaning."""

    password = serializers.CharField(required=False, allow_blank=True, default="", write_only=True,
                                     trim_whitespace=False)
    meaning = serializers.ChoiceField(choices=Signature.Meaning.choices, default=Signature.Meaning.APPROVAL)


class AnalysisRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TrialScopedViewSet):
    serializer_class = AnalysisRunSerializer
    permission_classes = [IsAuthenticated, TrialRolePermission, NotBlindedParticipant]
    read_roles = write_roles = services.ANALYSIS_ROLES
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no trial in the URL
            return AnalysisRun.objects.none()
        return AnalysisRun.objects.filter(trial=self.get_trial()).select_related("trial", "requested_by")

    @extend_schema(request=None, responses={201: AnalysisRunSerializer})
    def create(self, request, trial_code=None):
        run = services.request_analysis(request.user, self.get_trial())
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FinalInputSerializer, responses=AnalysisRunSerializer,
                   summary="Declare a finished run of the locked trial final (statistician, signed)")
    @action(detail=True, methods=["post"], url_path="final")
    def final(self, request, trial_code=None, pk=None):
        run = self.get_object()
        d = valid(FinalInputSerializer, request.data)
        signature = SignatureInput(d["password"], d["meaning"]) if d["password"] else None
        run = services.declare_final(actor=request.user, run=run, signature=signature)
        return Response(self.get_serializer(run).data)


class RunFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.CharField()


class RunStatusSerializer(serializers.Serializer):
    """What the analysis page polls: the run's progress; its files once it is done."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AnalysisRun.Status.choices)
    progress = serializers.IntegerField()
    message = serializers.CharField(allow_blank=True)
    created_at = serializers.CharField()
    finished_at = serializers.CharField(allow_null=True)
    data_sha256 = serializers.CharField(allow_blank=True)
    arms_masked = serializers.BooleanField()
    summary = serializers.JSONField()
    files = RunFileSerializer(many=True, required=False, help_text="Only once the run is done")


class RunStatusView(PageJSONView, TrialScopedAPIView):
    """/analysis/<trial_code>/runs/<run_id>/status.json, polled by the analysis page. The role check is in get()
    (PageJSONView: a method it does not take is 405 before it, as on the page)."""

    # Not in the API schema: a page-side endpoint (session login; /api/ clients get the login redirect).
    @extend_schema(operation_id="analysis_run_status", responses=RunStatusSerializer, exclude=True)
    def get(self, request, trial_code: str, run_id: int):
        trial = self.get_trial()
        require_role(request.user, trial, *services.ANALYSIS_ROLES)
        require_not_blinded(request.user, trial)  # a statistician who also reads or rates (trial/blinding.py)
        run = get_object_or_404(AnalysisRun, pk=run_id, trial=trial)
        data = run_status(run)
        if run.status == AnalysisRun.Status.DONE:
            data["files"] = [{**f, "url": reverse("analysis:file", args=[trial.code, run.pk, f["name"]])}
                             for f in services.run_files(run)]
        return Response(RunStatusSerializer(data).data)


def run_status(run: AnalysisRun) -> dict:
    return {"id": run.pk, "status": run.status, "progress": run.progress, "message": run.message,
            "created_at": run.created_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at
            else None, "data_sha256": run.data_sha256, "arms_masked": run.arms_masked, "summary": run.summary}
