from django.contrib import admin

from .models import Draft, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "active", "weights_path"]


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ["case", "model_version", "status", "generate_s", "worker_host"]
    list_filter = ["status", "model_version"]
