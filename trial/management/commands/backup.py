from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trial.audit import verify_all
from trial.backup import BackupError, PgTarget, make_backup
from trial.models import AuditHead


class Command(BaseCommand):
    help = ("Back up the database (pg_dump) and MEDIA_ROOT into DEST with a manifest of SHA-256 hashes, signed "
            "under AUDIT_SIGNING_KEY (docs/backup.md).")

    def add_arguments(self, parser):
        parser.add_argument("dest", help="A new (absent or empty) folder for the backup")

    def handle(self, *args, dest: str, **options):
        n, broken = verify_all()
        # The audit state goes into the manifest so a restore can be compared with what was backed up; a backup
        # of a broken log is still taken (it is evidence), and says so.
        summary = {
            "entries": n,
            "intact": broken is None,
            "first_broken_link": str(broken) if broken else "",
            "heads": dict(AuditHead.objects.order_by("chain").values_list("chain", "last_hash")),
        }
        try:
            manifest = make_backup(Path(dest), db=PgTarget.from_settings(settings.DATABASES["default"]),
                                   media_root=Path(settings.MEDIA_ROOT), audit_summary=summary)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if broken:
            self.stderr.write(self.style.WARNING(f"The audit log was already broken: {broken}"))
        self.stdout.write(self.style.SUCCESS(
            f"Backup written to {dest}: {len(manifest['files'])} files, {n} audit entries."))
