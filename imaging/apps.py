from django.apps import AppConfig


class ImagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "imaging"
    verbose_name = "Imaging and import"

    def ready(self) -> None:
        # Registers the Celery task in every process (web included): imaging.services sends it by name.
        from . import tasks  # noqa: F401
