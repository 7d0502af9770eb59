from django.core.management.base import BaseCommand

from inference.services import requeue_stale_drafts


class Command(BaseCommand):
    help = "Re-send drafts still queued (e.g. after the broker was down at enrolment). Safe to run from cron."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=600.0, help="seconds queued (default 600)")
        parser.add_argument(
            "--stale", type=float, default=None, metavar="SECONDS",
            help="also re-queue drafts RUNNING for longer than SECONDS (set it above the task time limit)",
        )

    def handle(self, *args, older_than, stale, **options):
        n = requeue_stale_drafts(older_than, running_older_than_s=stale)
        self.stdout.write(self.style.SUCCESS(f"Re-sent {n} queued draft(s)."))
