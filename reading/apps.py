from django.apps import AppConfig


class ReadingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reading"
    verbose_name = "Reading"

    def ready(self) -> None:
        # What this app adds to the apps below it: the reader's image access, its progress counts.
        # In ready(): these modules import models, which Django loads only after every AppConfig.
        from imaging.selectors import register_image_access
        from trial.signals import progress_requested

        from . import selectors

        register_image_access(selectors.reader_sees_case_images)
        register_image_access(selectors.reader_sees_library_images)  # similar cases (issue 21 item 2)
        progress_requested.connect(selectors.progress_receiver, dispatch_uid="reading.progress")
