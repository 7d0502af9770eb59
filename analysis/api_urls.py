from django.urls import include, path
from rest_framework.routers import SimpleRouter

from .api import AnalysisRunViewSet

router = SimpleRouter()
router.register("runs", AnalysisRunViewSet, basename="analysis-run")

urlpatterns = [path("<slug:trial_code>/", include(router.urls))]
