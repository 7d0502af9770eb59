"""Seed the demo trial and print one login per role: `make demo`. With --reset (`make demo-reset`) the demo's SQLite
database and media are deleted and the demo is migrated and seeded again; the virtual environment is left alone."""
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from demo.seed import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Seed the demo trial (idempotent) and print one login per role; --reset starts the demo over."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--reset", action="store_true",
                            help="Delete the demo's SQLite database and media files, migrate and seed again "
                                 "(refused on any other database)")

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

    def handle(self, *args, port="8000", reset=False, **options):
        if reset:
            self.reset()
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
