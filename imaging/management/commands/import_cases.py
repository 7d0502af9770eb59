"""`manage.py import_cases DIR --trial T --center C [--jobs N]`: a folder, file by file; no file stops the folder.

``--jobs N`` imports with N worker processes (default 1); each file is still its own transaction."""
import os
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.errors import TrialError
from imaging.services import FileResult, import_paths, iter_dir
from trial.models import Trial


class Command(BaseCommand):
    help = "Import a folder of DICOM files into a trial's center (validated, de-identified, grouped by study)."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--trial", required=True)
        parser.add_argument("--center", required=True)
        parser.add_argument("--jobs", type=int, default=1,
                            help=f"worker processes (this machine has {os.cpu_count()} cores); default 1")
        parser.add_argument("--quiet-progress", action="store_true", help="no progress bar")

    def handle(self, *args, directory, trial, center, jobs=1, quiet_progress=False, **options):
        t = Trial.objects.filter(code=trial).first()
        if t is None:
            raise CommandError(f"No trial {trial}.")
        c = t.centers.filter(code=center).first()
        if c is None:
            raise CommandError(f"No center {center} in trial {trial}.")
        if jobs < 1:
            raise CommandError("--jobs must be at least 1.")
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

        try:
            import_paths(None, t, c, [(str(p.relative_to(directory)), p) for p in files], jobs=jobs,
                         progress=progress)
        except TrialError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        results.sort(key=lambda r: r.filename)  # workers finish in any order; report in folder order
        self.stdout.write(f"Imported {counts['imported']}, already present {counts['duplicate']}, "
                          f"refused {counts['refused']} (of {len(files)} files).")
        if flag_counts:
            self.stdout.write("Flags: " + ", ".join(f"{k} {n}" for k, n in sorted(flag_counts.items())))
        for r in results:
            if r.status == "refused":
                self.stdout.write(f"  refused {r.filename}: {r.reason_code}: {r.message}")
            elif r.flags:
                self.stdout.write(f"  flagged {r.filename} ({r.case_code}): {', '.join(r.flags)}")
