from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        # In ready(): these modules import models, which Django loads only after every AppConfig.
        from trial.signals import ai_arm_added, ai_arm_removed

        from . import services

        ai_arm_added.connect(services.ai_arm_added_receiver, dispatch_uid="inference.ai_arm_added")
        ai_arm_removed.connect(services.ai_arm_removed_receiver, dispatch_uid="inference.ai_arm_removed")
