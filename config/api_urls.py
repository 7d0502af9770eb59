from django.urls import include, path
from rest_framework.routers import DefaultRouter, SimpleRouter

from imaging import api as imaging_api
from trial import api as trial_api

router = DefaultRouter()
router.register("trials", trial_api.TrialViewSet, basename="trial")

trial_router = SimpleRouter()
trial_router.register("centers", trial_api.CenterViewSet, basename="center")
trial_router.register("arms", trial_api.ArmViewSet, basename="arm")
trial_router.register("members", trial_api.MembershipViewSet, basename="member")
trial_router.register("cases", trial_api.CaseViewSet, basename="case")
trial_router.register("allocations", trial_api.AllocationViewSet, basename="allocation")
trial_router.register("imports", imaging_api.ImportViewSet, basename="import")
trial_router.register("reference-standard", imaging_api.ReferenceViewSet, basename="reference")

urlpatterns = [
    path("", include(router.urls)),
    path("trials/<slug:trial_code>/", include(trial_router.urls)),
]

# Blinded expert rating (issue 6)
urlpatterns += [path("rating/", include("rating.api_urls"))]
# The standalone arena: experts compare model versions' drafts (issue 20 item 1)
urlpatterns += [path("arena/", include("rating.arena_api_urls"))]

# Reading: the reader's worklist and reads (issue 4)
urlpatterns += [path("reading/", include("reading.api_urls"))]

# Analysis runs (issue 7)
urlpatterns += [path("analysis/", include("analysis.api_urls"))]

# The coordinator's case overview and exclusion (issue 17)
urlpatterns += [path("", include("enrolment.api_urls"))]
