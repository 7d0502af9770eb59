"""Seed the demo trial and print one login per role: `make demo`. With --reset (`make demo-reset`) the demo's SQLite
database and media are deleted and the demo is migrated and seeded again; the virtual environment is left alone."""
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.urls import reverse

from demo.seed import DEMO_PASSWORD, seed_demo
from demo.three_arm import seed_three_arm_demo


class Command(BaseCommand):
    help = ("Seed the demo trial (idempotent) and print one login per role; --reset starts the demo over. --arms 3: "
            "the three-arm demo (two retrieval-baseline versions and unassisted), run to lock and analysed (issue 20).")

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--reset", action="store_true",
                            help="Delete the demo's SQLite database and media files, migrate and seed again "
                                 "(refused on any other database)")
        parser.add_argument("--arms", type=int, choices=[2, 3], default=2,
                            help="2: the two-arm demo left open for a visitor (default); 3: the three-arm demo, "
                                 "locked and analysed")

    def say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def reset(self) -> None:
        if connection.vendor != "sqlite":
            raise CommandError("--reset deletes the database file: it works on the demo's SQLite database only.")
        db = Path(settings.DATABASES["default"]["NAME"])
        connection.close()
        media = Path(settings.MEDIA_ROOT)
        self.say(f"Reset: deleting {db} and {media}")
        db.unlink(missing_ok=True)
        if media.is_dir():
            shutil.rmtree(media)
        self.say("Reset: migrating a fresh database...")
        call_command("migrate", interactive=False, verbosity=0)

    def handle(self, *args, port="8000", reset=False, arms=2, **options):
        if reset:
            self.reset()
        if arms == 3:
            return self.three_arms(port)
        self.say("Seeding the demo trial (about two minutes on a fresh machine):")
        result = seed_demo(report=self.say)
        trial = result.trial
        self.stdout.write(self.style.SUCCESS(
            f"Demo trial {trial.code} {'seeded' if result.created else 'already present'}: "
            f"{trial.cases.count()} cases, {trial.memberships.count()} people."))
        self.stdout.write(f"\nOpen http://127.0.0.1:{port}/ and log in as (password for all: {DEMO_PASSWORD}):")
        for role, username in result.logins.items():
            self.stdout.write(f"  {role:22s} {username}")
        self.stdout.write("")

    def three_arms(self, port: str) -> None:
        """The three-arm demo (demo/three_arm.py), kept apart from the two-arm demo's output."""
        result = seed_three_arm_demo()
        trial, run = result.trial, result.analysis
        self.stdout.write(self.style.SUCCESS(
            f"Three-arm demo trial {trial.code} {'seeded' if result.created else 'already present'}: "
            f"{trial.cases.count()} cases, arms {', '.join(trial.arms.order_by('code').values_list('code', flat=True))}"
            f", status {trial.status}."))
        self.stdout.write(f"Arena: {result.arena_judgements} judgements of {result.arena_versions} model versions' "
                          "drafts.")
        if run is not None:
            self.stdout.write(f"Analysis run {run.pk}: {run.status}. Report: http://127.0.0.1:{port}"
                              f"{reverse('analysis:page', args=[trial.code])}")
        self.stdout.write(f"\nLog in as (password for all: {DEMO_PASSWORD}):")
        for role, username in result.logins.items():
            self.stdout.write(f"  {role:22s} {username}")
        self.stdout.write("")
