from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        # In ready(): these modules import models, which Django loads only after every AppConfig.
        from trial.signals import default_model_version_requested

        from . import selectors

        default_model_version_requested.connect(selectors.default_model_version_receiver,
                                                dispatch_uid="inference.default_model_version")
