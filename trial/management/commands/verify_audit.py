from django.core.management.base import BaseCommand, CommandError

from trial.audit import verify_all
from trial.signatures import verify_signatures


class Command(BaseCommand):
    help = "Verify the hash chains of the audit log; report the first broken link."

    def handle(self, *args, **options):
        n, broken = verify_all()
        if broken:
            raise CommandError(f"Audit log broken at {broken}")
        signed, invalid = verify_signatures()
        if invalid:
            raise CommandError(f"{len(invalid)} electronic signature(s) no longer match the record they signed: "
                               + ", ".join(f"{s.pk} ({s.object_type or 'entry'} {s.object_id or s.entry_id})"
                                           for s in invalid))
        self.stdout.write(self.style.SUCCESS(f"Audit log intact: {n} entries verified. {signed} signatures valid."))
