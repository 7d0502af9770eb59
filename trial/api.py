"""REST API for coordinators: the same resources as the pages. Role checks via TrialRolePermission."""
from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.accounts import needs_invitation, send_invitation

from . import selectors, services
from .api_base import TrialScopedViewSet, valid
from .models import Arm, Case, Center, Membership, Trial
from .serializers import (
    AllocationListCreateSerializer,
    AllocationListSerializer,
    AllocationSerializer,
    ArmEditSerializer,
    ArmSerializer,
    CaseCreateSerializer,
    CaseSerializer,
    CenterEditSerializer,
    CenterSerializer,
    MemberEditSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    ReasonSerializer,
    RemovedSerializer,
    StatusPreviewSerializer,
    StatusSerializer,
    TrialProgressSerializer,
    TrialSerializer,
    TrialSettingsSerializer,
)
from .signatures import SignatureInput


class TrialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TrialSerializer
    lookup_field = "code"
    lookup_url_kwarg = "trial_code"  # one URL parameter name across pages and API
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Trial.objects.none()
        return selectors.trials_for_user(self.request.user).order_by("code")

    @extend_schema(request=TrialSerializer, responses=TrialSerializer)
    def create(self, request, *args, **kwargs):
        d = valid(TrialSerializer, request.data)
        trial = services.create_trial(
            request.user, code=d["code"], title=d["title"], design=d.get("design", Trial.Design.PAIRED_BY_CASE),
            findings=[dict(f) for f in d["findings"]] if d.get("findings") else None,
            **{k: d[k] for k in services.TRIAL_SETTINGS if k != "title" and k in d},
        )
        return Response(TrialSerializer(trial).data, status=status.HTTP_201_CREATED)

    def _coordinated(self, code: str) -> Trial:
        trial = get_object_or_404(self.get_queryset(), code=code)
        services.ensure_coordinator(self.request.user, trial)
        return trial

    @extend_schema(methods=["GET"], responses=AllocationListSerializer)
    @extend_schema(methods=["POST"], request=AllocationListCreateSerializer, responses=AllocationListSerializer)
    @action(detail=True, methods=["get", "post"], url_path="allocation-list")
    def allocation_list(self, request, trial_code=None, **kwargs):
        """GET (coordinator, statistician): the commitment; seed, salt and block sizes after lock. POST
        (coordinator): generate and seal the list."""
        if request.method == "GET":
            trial = get_object_or_404(self.get_queryset(), code=trial_code)
            summary = selectors.allocation_list_summary(request.user, trial)
            if summary is None:
                raise NotFound("This trial has no allocation list yet.")
            return Response(AllocationListSerializer(summary).data)
        trial = self._coordinated(trial_code)
        d = dict(valid(AllocationListCreateSerializer, request.data))
        password, meaning = d.pop("password"), d.pop("meaning")
        signature = SignatureInput(password, meaning) if password else None
        services.generate_allocation_list(request.user, trial, signature=signature, **d)
        return Response(AllocationListSerializer(selectors.allocation_list_summary(request.user, trial)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=StatusPreviewSerializer)
    @extend_schema(methods=["POST"], request=StatusSerializer, responses=TrialSerializer)
    @action(detail=True, methods=["get", "post"])
    def status(self, request, trial_code=None, **kwargs):
        """GET: the next status and what moving there would leave outstanding. POST: move; with work outstanding
        (or to lock) a reason is required (409 `outstanding_work` lists what is left), and it is audited."""
        trial = self._coordinated(trial_code)
        if request.method == "GET":
            return Response(StatusPreviewSerializer(selectors.status_preview(request.user, trial)).data)
        d = valid(StatusSerializer, request.data)
        signature = SignatureInput(d["password"], d["meaning"]) if d["password"] else None
        trial = services.advance_status(request.user, trial, d["to_status"], reason=d["reason"], signature=signature)
        return Response(TrialSerializer(trial).data)

    @extend_schema(request=TrialSettingsSerializer, responses=TrialSerializer)
    @action(detail=True, methods=["post"], url_path="settings", url_name="settings")
    def change_settings(self, request, trial_code=None, **kwargs):
        """Change trial settings (issue 17): only the fields sent; audited with the reason (required once the
        trial has left setup; findings only during setup; the panel never above the trial's experts)."""
        trial = self._coordinated(trial_code)
        d = dict(valid(TrialSettingsSerializer, request.data))
        reason = d.pop("reason", "")
        if "findings" in d:
            d["findings"] = [dict(f) for f in d["findings"]]
        trial = services.update_trial_settings(request.user, trial, reason=reason, **d)
        return Response(TrialSerializer(trial).data)

    @extend_schema(responses=TrialProgressSerializer)
    @action(detail=True, methods=["get"])
    def progress(self, request, trial_code=None, **kwargs):
        trial = self._coordinated(trial_code)
        return Response(TrialProgressSerializer(selectors.trial_progress(trial)).data)


class CenterViewSet(mixins.ListModelMixin, TrialScopedViewSet):
    serializer_class = CenterSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no trial in the URL
            return Center.objects.none()
        return self.get_trial().centers.all()

    @extend_schema(request=CenterSerializer, responses=CenterSerializer)
    def create(self, request, trial_code=None):
        d = valid(CenterSerializer, request.data)
        center = services.add_center(request.user, self.get_trial(), code=d["code"], name=d["name"])
        return Response(CenterSerializer(center).data, status=status.HTTP_201_CREATED)

    # Editing setup (issue 17): audited with the reason; refused after setup (409 not_in_setup).
    @extend_schema(request=CenterEditSerializer, responses=CenterSerializer)
    @action(detail=True, methods=["post"])
    def edit(self, request, trial_code=None, pk=None):
        center = get_object_or_404(self.get_queryset(), pk=pk)
        d = valid(CenterEditSerializer, request.data)
        center = services.update_center(request.user, center, name=d["name"], code=d.get("code"), reason=d["reason"])
        return Response(CenterSerializer(center).data)

    @extend_schema(request=ReasonSerializer, responses=RemovedSerializer)
    @action(detail=True, methods=["post"])
    def remove(self, request, trial_code=None, pk=None):
        center = get_object_or_404(self.get_queryset(), pk=pk)
        services.remove_center(request.user, center, reason=valid(ReasonSerializer, request.data)["reason"])
        return Response(RemovedSerializer({"removed": True}).data)


class ArmViewSet(mixins.ListModelMixin, TrialScopedViewSet):
    serializer_class = ArmSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no trial in the URL
            return Arm.objects.none()
        return self.get_trial().arms.select_related("model_assignment__model_version")

    @extend_schema(request=ArmSerializer, responses=ArmSerializer)
    def create(self, request, trial_code=None):
        d = valid(ArmSerializer, request.data)
        arm = services.add_arm(request.user, self.get_trial(), code=d["code"], name=d["name"],
                               is_ai=d.get("is_ai", False), ratio=d.get("ratio", 1))
        return Response(ArmSerializer(arm).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ArmEditSerializer, responses=ArmSerializer)
    @action(detail=True, methods=["post"])
    def edit(self, request, trial_code=None, pk=None):
        arm = get_object_or_404(self.get_queryset(), pk=pk)
        d = valid(ArmEditSerializer, request.data)
        arm = services.update_arm(request.user, arm, name=d["name"], ratio=d["ratio"], reason=d["reason"])
        return Response(ArmSerializer(arm).data)

    @extend_schema(request=ReasonSerializer, responses=RemovedSerializer)
    @action(detail=True, methods=["post"])
    def remove(self, request, trial_code=None, pk=None):
        arm = get_object_or_404(self.get_queryset(), pk=pk)
        services.remove_arm(request.user, arm, reason=valid(ReasonSerializer, request.data)["reason"])
        return Response(RemovedSerializer({"removed": True}).data)


class MembershipViewSet(mixins.ListModelMixin, TrialScopedViewSet):
    serializer_class = MembershipSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no trial in the URL
            return Membership.objects.none()
        return self.get_trial().memberships.select_related("user", "center", "arm").order_by("role", "user__username")

    @extend_schema(request=MembershipCreateSerializer, responses=MembershipSerializer)
    def create(self, request, trial_code=None):
        trial = self.get_trial()
        d = valid(MembershipCreateSerializer, request.data)
        center = None
        if d.get("center"):
            center = trial.centers.filter(code=d["center"]).first()
            if center is None:
                raise ValidationError({"center": f"No center {d['center']} in this trial."})
        m = services.add_member_by_username(request.user, trial, username=d["username"], role=d["role"],
                                            center=center, experience=d.get("experience") or "",
                                            email=d.get("email") or "")
        if needs_invitation(m.user):  # a new user without a password: the one-time set-password link
            send_invitation(m.user, domain=request.get_host(), use_https=request.is_secure(),
                            invited_to=f"{trial.code} ({trial.title})")
        return Response(MembershipSerializer(m).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=MembershipSerializer)
    @action(detail=True, methods=["post"])
    def enrol(self, request, trial_code=None, pk=None):
        m = get_object_or_404(Membership, pk=pk, trial=self.get_trial())
        m = services.enrol_reader(request.user, m)
        return Response(MembershipSerializer(m).data)

    @extend_schema(request=MemberEditSerializer, responses=MembershipSerializer)
    @action(detail=True, methods=["post"])
    def edit(self, request, trial_code=None, pk=None):
        trial = self.get_trial()
        m = get_object_or_404(Membership, pk=pk, trial=trial)
        d = valid(MemberEditSerializer, request.data)
        center = None
        if d.get("center"):
            center = trial.centers.filter(code=d["center"]).first()
            if center is None:
                raise ValidationError({"center": f"No center {d['center']} in this trial."})
        m = services.update_member(request.user, m, center=center, experience=d.get("experience") or "",
                                   reason=d["reason"])
        return Response(MembershipSerializer(m).data)

    @extend_schema(request=ReasonSerializer, responses=RemovedSerializer)
    @action(detail=True, methods=["post"])
    def remove(self, request, trial_code=None, pk=None):
        m = get_object_or_404(Membership, pk=pk, trial=self.get_trial())
        services.remove_member(request.user, m, reason=valid(ReasonSerializer, request.data)["reason"])
        return Response(RemovedSerializer({"removed": True}).data)


class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TrialScopedViewSet):
    serializer_class = CaseSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no trial in the URL
            return Case.objects.none()
        return self.get_trial().cases.select_related("center", "arm").order_by("code")

    @extend_schema(request=CaseCreateSerializer, responses=CaseSerializer)
    def create(self, request, trial_code=None):
        trial = self.get_trial()
        d = valid(CaseCreateSerializer, request.data)
        center = trial.centers.filter(code=d["center"]).first()
        if center is None:
            raise ValidationError({"center": f"No center {d['center']} in this trial."})
        case = services.add_case(request.user, trial, center=center, code=d["code"])
        return Response(CaseSerializer(case).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=CaseSerializer)
    @action(detail=True, methods=["post"])
    def enrol(self, request, trial_code=None, pk=None):
        case = get_object_or_404(Case, pk=pk, trial=self.get_trial())
        case = services.enrol_case(request.user, case)
        return Response(CaseSerializer(case).data)


class AllocationViewSet(mixins.ListModelMixin, TrialScopedViewSet):
    """Revealed allocations only; the sealed list itself has no route."""

    serializer_class = AllocationSerializer

    def get_queryset(self):
        return selectors.revealed_allocations(self.request.user, self.get_trial())


class TokenView(ObtainAuthToken):
    """DRF's token login, except that a login refused by django-axes' lockout says so (429 with a retry hint)
    instead of DRF's generic "unable to log in" 400: Django's authenticate() hides the lockout as "no user"."""

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if not getattr(request, "axes_locked_out", False):
                raise

            cooloff = int(settings.AXES_COOLOFF_TIME.total_seconds())
            return Response(
                {"detail": "Account locked: too many failed logins. Try again later.", "code": "locked_out"},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(cooloff)},
            )
