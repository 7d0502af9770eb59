from django.urls import include, path
from rest_framework.routers import DefaultRouter, SimpleRouter

from trial import api as trial_api

router = DefaultRouter()
router.register("trials", trial_api.TrialViewSet, basename="trial")

trial_router = SimpleRouter()
trial_router.register("centers", trial_api.CenterViewSet, basename="center")
trial_router.register("arms", trial_api.ArmViewSet, basename="arm")
trial_router.register("members", trial_api.MembershipViewSet, basename="member")
trial_router.register("cases", trial_api.CaseViewSet, basename="case")
trial_router.register("allocations", trial_api.AllocationViewSet, basename="allocation")

urlpatterns = [
    path("", include(router.urls)),
    path("trials/<slug:trial_code>/", include(trial_router.urls)),
]
