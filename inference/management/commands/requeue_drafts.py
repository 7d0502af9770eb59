from django.core.management.base import BaseCommand

from inference.services import requeue_stale_drafts


class Command(BaseCommand):
    help = "Re-send drafts still queued (e.g. after the broker was down at enrolment). Safe to run from cron."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=600.0, help="seconds queued (default 600)")
        parser.add_argument(
            "--stale", nargs="?", const="limit", default=None, metavar="SECONDS",
            help="also re-queue drafts RUNNING past their model version's time limit (no value: the limit their "
                 "task is sent with, from max_new_tokens and the measured speed) or for longer than SECONDS",
        )

    def handle(self, *args, older_than, stale, **options):
        by_limit = stale == "limit"
        n = requeue_stale_drafts(older_than, running_older_than_s=None if by_limit or stale is None else float(stale),
                                 running_past_limit=by_limit)
        self.stdout.write(self.style.SUCCESS(f"Re-sent {n} queued draft(s)."))
