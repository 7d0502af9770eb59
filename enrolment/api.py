"""The case page's API: GET a case's overview, POST an exclusion with its reason (coordinators)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from trial import services as trial_services

from . import selectors
from .serializers import CaseOverviewSerializer, ExcludeCaseSerializer


class CaseOverviewAPI(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=CaseOverviewSerializer)
    def get(self, request, trial_code: str, case_id: int):
        case = selectors.case_for_coordinator(request.user, trial_code, case_id)
        return Response(CaseOverviewSerializer(selectors.case_overview(request.user, case)).data)


class CaseExcludeAPI(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=ExcludeCaseSerializer, responses=CaseOverviewSerializer)
    def post(self, request, trial_code: str, case_id: int):
        case = selectors.case_for_coordinator(request.user, trial_code, case_id)
        s = ExcludeCaseSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        case = trial_services.exclude_case(request.user, case, s.validated_data["reason"])
        return Response(CaseOverviewSerializer(selectors.case_overview(request.user, case)).data)
