from django.core.management.base import BaseCommand
from django.urls import reverse

from demo.seed import DEMO_PASSWORD, seed_demo
from demo.three_arm import seed_three_arm_demo


class Command(BaseCommand):
    help = ("Seed the demo trial (idempotent) and print one login per role. --arms 3: the three-arm demo (two "
            "retrieval-baseline versions and unassisted), run to lock and analysed (issue 20).")

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--arms", type=int, choices=[2, 3], default=2,
                            help="2: the two-arm demo left open for a visitor (default); 3: the three-arm demo, "
                                 "locked and analysed")

    def handle(self, *args, port="8000", arms=2, **options):
        if arms == 3:
            return self.three_arms(port)
        result = seed_demo()
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
        if run is not None:
            self.stdout.write(f"Analysis run {run.pk}: {run.status}. Report: http://127.0.0.1:{port}"
                              f"{reverse('analysis:page', args=[trial.code])}")
        self.stdout.write(f"\nLog in as (password for all: {DEMO_PASSWORD}):")
        for role, username in result.logins.items():
            self.stdout.write(f"  {role:22s} {username}")
        self.stdout.write("")
