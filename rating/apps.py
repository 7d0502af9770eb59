from django.apps import AppConfig


class RatingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rating"
    verbose_name = "Expert rating"

    def ready(self) -> None:
        # What this app adds to the apps below it: the expert's image access, its progress counts.
        # In ready(): these modules import models, which Django loads only after every AppConfig.
        from imaging.selectors import register_image_access
        from trial.signals import progress_requested

        from . import selectors

        register_image_access(selectors.expert_sees_case_images)
        progress_requested.connect(selectors.progress_receiver, dispatch_uid="rating.progress")
