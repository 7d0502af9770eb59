from django.core.management.base import BaseCommand

from demo.seed import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Seed the demo trial (idempotent) and print one login per role."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")

    def handle(self, *args, port="8000", **options):
        result = seed_demo()
        trial = result.trial
        self.stdout.write(self.style.SUCCESS(
            f"Demo trial {trial.code} {'seeded' if result.created else 'already present'}: "
            f"{trial.cases.count()} cases, {trial.memberships.count()} people."))
        self.stdout.write(f"\nOpen http://127.0.0.1:{port}/ and log in as (password for all: {DEMO_PASSWORD}):")
        for role, username in result.logins.items():
            self.stdout.write(f"  {role:22s} {username}")
        self.stdout.write("")
