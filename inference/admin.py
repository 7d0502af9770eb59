"""Read-only for superusers (trial/admin.py): drafts are trial data and model versions name what an arm's drafts
came from; both change only through the services and commands. A model version with drafts is immutable
(inference.services.update_model_version refuses); a change is a new version: `manage.py new_model_version`."""
from django.contrib import admin

from trial.admin import ReadOnlyTrialData

from .models import ArmModelVersion, Draft, ExpertCalibration, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyTrialData):
    list_display = ["name", "backend", "active", "weights_path", "weights_sha256"]


@admin.register(Draft)
class DraftAdmin(ReadOnlyTrialData):
    list_display = ["case", "model_version", "status", "generate_s", "worker_host"]
    list_filter = ["status", "model_version"]


@admin.register(ArmModelVersion)
class ArmModelVersionAdmin(ReadOnlyTrialData):
    list_display = ["arm", "model_version"]


@admin.register(ExpertCalibration)
class ExpertCalibrationAdmin(ReadOnlyTrialData):
    list_display = ["model_version", "trial", "method", "n_cases", "fitted_at"]
    list_filter = ["model_version", "method"]
