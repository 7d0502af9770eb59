from django.apps import AppConfig


class EnrolmentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "enrolment"
    verbose_name = "Enrolment workflow"

    def ready(self) -> None:
        # In ready(): these modules import models, which Django loads only after every AppConfig.
        from reading.signals import read_submitted
        from trial.signals import case_enrolled, expert_joined, reader_enrolled

        from . import receivers

        case_enrolled.connect(receivers.make_reads_and_drafts, dispatch_uid="enrolment.reads_and_drafts")
        reader_enrolled.connect(receivers.make_reads_for_reader, dispatch_uid="enrolment.reads_for_reader")
        expert_joined.connect(receivers.top_up_rating_panels, dispatch_uid="enrolment.top_up_panels")
        read_submitted.connect(receivers.make_rating_tasks, dispatch_uid="enrolment.rating_tasks")
