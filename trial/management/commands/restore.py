from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trial.backup import BackupError, PgTarget, check_backup, restore_backup, verify_audit_in


class Command(BaseCommand):
    help = ("Check a backup against its manifest, restore it into an empty database and media folder, then run "
            "verify_audit there (docs/backup.md).")

    def add_arguments(self, parser):
        parser.add_argument("src", help="The backup folder (made by `manage.py backup`)")
        parser.add_argument("--database-url", help="postgres://... of the new, empty database to restore into")
        parser.add_argument("--media-root", help="Absent or empty folder for the media files")
        parser.add_argument("--check-only", action="store_true", help="Only compare the files with the manifest")

    def handle(self, *args, src: str, database_url: str | None, media_root: str | None, check_only: bool,
               **options):
        if check_only:
            check = check_backup(Path(src))
            if not check.ok:
                raise CommandError("Backup does not match its manifest: " + "; ".join(check.problems))
            self.stdout.write(self.style.SUCCESS(f"Backup matches its manifest ({len(check.manifest['files'])} "
                                                 "files)."))
            return
        if not database_url or not media_root:
            raise CommandError("--database-url and --media-root are required to restore")
        db = PgTarget.from_url(database_url)
        try:
            check = restore_backup(Path(src), db=db, media_root=Path(media_root))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        proc = verify_audit_in(db)
        if proc.returncode != 0:
            raise CommandError(f"Restored, but verify_audit fails there: {(proc.stderr or proc.stdout).strip()}")
        self.stdout.write(proc.stdout.strip())
        expected = check.manifest.get("audit", {}).get("entries")
        if f"intact: {expected} entries" not in proc.stdout:
            raise CommandError(f"Restored audit log differs from the backup's ({expected} entries): {proc.stdout}")
        self.stdout.write(self.style.SUCCESS(
            f"Restored {src} into {db.name} and {media_root}; the backup held {expected} audit entries."))
