"""Email readers and experts with overdue work (issue 17): `python manage.py send_reminders [--trial CODE]`.
The beat task `enrolment.tasks.send_reminders` runs the same once a day."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from enrolment import services
from trial.models import Trial


class Command(BaseCommand):
    help = "Email every reader and expert with overdue reads or rating tasks (at most once per 20 hours each)."

    def add_arguments(self, parser):
        parser.add_argument("--trial", help="Only this trial (default: every trial where people are working)")

    def handle(self, *args, trial=None, **options):
        if trial:
            t = Trial.objects.filter(code=trial).first()
            if t is None:
                raise CommandError(f"No trial {trial}.")
            results = {t.code: services.send_reminders(actor=None, trial=t)}
        else:
            results = services.send_all_reminders()
        for code, result in results.items():
            self.stdout.write(f"{code}: {result.summary()}")
        if not results:
            self.stdout.write("No trial is enrolling, reading or rating.")
