from django.apps import AppConfig


class TrialConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trial"
    verbose_name = "Trials"

    def ready(self) -> None:
        from . import access_audit

        access_audit.connect()
