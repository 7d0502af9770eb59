from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analysis"
    verbose_name = "Analysis"

    def ready(self) -> None:
        # Registers the Celery task in every process (web included): analysis.services sends it by name.
        from . import tasks  # noqa: F401
