from django.core.management.base import BaseCommand, CommandError

from trial.audit import verify_all


class Command(BaseCommand):
    help = "Verify the hash chains of the audit log; report the first broken link."

    def handle(self, *args, **options):
        n, broken = verify_all()
        if broken:
            raise CommandError(f"Audit log broken at {broken}")
        self.stdout.write(self.style.SUCCESS(f"Audit log intact: {n} entries verified."))
