from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Inference"

    def ready(self) -> None:
        # Signal wiring needs the app registry ready, hence the imports here.
        from trial.signals import ai_arm_added

        from . import services

        ai_arm_added.connect(services.ai_arm_added_receiver, dispatch_uid="inference.ai_arm_added")
