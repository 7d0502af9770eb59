from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.errors import TrialError
from imaging.services import import_file, iter_dir
from trial.models import Trial


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
        refused = []
        bar = tqdm(files, unit="file", disable=quiet_progress, file=self.stderr._out)
        for path in bar:
            try:
                r = import_file(None, t, c, str(path.relative_to(directory)), path.read_bytes())
            except TrialError as exc:
                raise CommandError(exc.message) from exc
            counts[r.status] += 1
            if r.status == "refused":
                refused.append(r)
            bar.set_postfix(counts)
        self.stdout.write(f"Imported {counts['imported']}, already present {counts['duplicate']}, "
                          f"refused {counts['refused']} (of {len(files)} files).")
        for r in refused:
            self.stdout.write(f"  refused {r.filename}: {r.reason_code}: {r.message}")
