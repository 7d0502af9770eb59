"""`manage.py import_cases DIR --trial T --center C`: a folder, file by file; no file stops the folder."""
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.errors import TrialError
from imaging.services import FileResult, import_files, iter_dir
from trial.models import Trial


def _read(files: list[Path], directory: str, failed: list[FileResult]):
    for path in files:
        name = str(path.relative_to(directory))
        try:
            data = path.read_bytes()
        except OSError as exc:
            failed.append(FileResult(name, "refused", "unreadable", f"could not read the file: {exc.strerror}"))
            continue
        yield name, data


class Command(BaseCommand):
    help = "Import a folder of DICOM files into a trial's center (validated, de-identified, grouped by study)."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--trial", required=True)
        parser.add_argument("--center", required=True)
        parser.add_argument("--quiet-progress", action="store_true", help="no progress bar")

    def handle(self, *args, directory, trial, center, quiet_progress=False, **options):
        t = Trial.objects.filter(code=trial).first()
        if t is None:
            raise CommandError(f"No trial {trial}.")
        c = t.centers.filter(code=center).first()
        if c is None:
            raise CommandError(f"No center {center} in trial {trial}.")
        files = iter_dir(Path(directory))
        if not files:
            raise CommandError(f"No files under {directory}.")
        counts = {"imported": 0, "duplicate": 0, "refused": 0}
        flag_counts: Counter[str] = Counter()
        results: list[FileResult] = []
        bar = tqdm(total=len(files), unit="file", disable=quiet_progress, file=self.stderr._out)

        def progress(r: FileResult) -> None:
            results.append(r)
            counts[r.status] += 1
            flag_counts.update(r.flags)
            bar.update(1)
            bar.set_postfix(counts)

        unreadable: list[FileResult] = []
        try:
            import_files(None, t, c, _read(files, directory, unreadable), progress=progress)
        except TrialError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        for r in unreadable:
            progress(r)
        self.stdout.write(f"Imported {counts['imported']}, already present {counts['duplicate']}, "
                          f"refused {counts['refused']} (of {len(files)} files).")
        if flag_counts:
            self.stdout.write("Flags: " + ", ".join(f"{k} {n}" for k, n in sorted(flag_counts.items())))
        for r in results:
            if r.status == "refused":
                self.stdout.write(f"  refused {r.filename}: {r.reason_code}: {r.message}")
            elif r.flags:
                self.stdout.write(f"  flagged {r.filename} ({r.case_code}): {', '.join(r.flags)}")
