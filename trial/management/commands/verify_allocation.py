from django.core.management.base import BaseCommand, CommandError

from core.errors import TrialError
from trial.allocation_check import verify_allocation
from trial.models import Trial


class Command(BaseCommand):
    help = ("After lock: regenerate the allocation list from its disclosed seed and salt, and check the commitment, "
            "every stored slot and every revealed allocation. Says OK or names each mismatch.")

    def add_arguments(self, parser):
        parser.add_argument("--trial", required=True, help="Trial code")

    def handle(self, *args, trial: str, **options):
        t = Trial.objects.filter(code=trial).first()
        if t is None:
            raise CommandError(f"No trial {trial}.")
        try:
            check = verify_allocation(t)
        except TrialError as exc:
            raise CommandError(exc.message) from exc
        if not check.ok:
            lines = "\n".join(f"  - {p}" for p in check.problems)
            more = check.n_problems - len(check.problems)
            raise CommandError(f"Allocation list of {t.code} does NOT verify ({check.n_problems} problem(s)):\n{lines}"
                               + (f"\n  ... and {more} more" if more > 0 else ""))
        self.stdout.write(self.style.SUCCESS(
            f"Allocation list of {t.code} OK: commitment matches, {check.slots_checked} slots in {check.strata} "
            f"strata regenerated from the disclosed seed (scheme {check.scheme})."))
