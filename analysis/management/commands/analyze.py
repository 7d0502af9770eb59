"""Export and analyse one trial synchronously (the same pipeline as the statistician's "Run analysis")."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trial.models import Trial

from ...pipeline import primary_summary
from ...services import EXPORT_DIR, EXPORT_ZIP, REPORT_DIR, run_analysis


def _ci(ci, nd=2) -> str:
    if not ci or ci[0] is None:
        return "n/a"
    return f"{ci[0]:.{nd}f} to {ci[1]:.{nd}f}"


def _num(x, nd=2) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def _p(p) -> str:
    return "n/a" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


class Command(BaseCommand):
    help = "Export a trial, run the analysis and write the report: OUT/export, OUT/export.zip, OUT/report."

    def add_arguments(self, parser):
        parser.add_argument("--trial", required=True, help="trial code")
        parser.add_argument("--out", required=True, help="output directory")

    def handle(self, *args, **o):
        trial = Trial.objects.filter(code=o["trial"]).first()
        if trial is None:
            raise CommandError(f"No trial {o['trial']}.")
        out = Path(o["out"])

        def progress(pct: int, msg: str) -> None:
            self.stdout.write(f"[{pct:3d}%] {msg}")

        results = run_analysis(trial, out, progress=progress)
        s = primary_summary(results)
        a, c = s["assisted"], s["control"]
        w = self.stdout.write
        w("")
        w(f"Trial {trial.code} ({results['design']}), arms {'MASKED ' if s['masked'] else ''}{a} vs {c}; "
          f"data sha256 {results['manifest']['data_sha256'][:16]}")
        w(f"  Quality difference ({a} - {c}): {_num(s['quality_difference'])} (95% CI {_ci(s['quality_ci'])}), "
          f"p {_p(s['quality_p'])}, n = {s['quality_n']} cases")
        w(f"  Reading time ratio ({a} / {c}): {_num(s['time_ratio'], 3)} (95% CI {_ci(s['time_ratio_ci'], 3)}), "
          f"p {_p(s['time_ratio_p'])}; relative reduction of the mean {_num(s['time_relative_reduction'], 3)} "
          f"(95% CI {_ci(s['time_relative_reduction_ci'], 3)})")
        w(f"  {a} preferred among decisive pairs: {_num(s['preference_rate'], 3)} "
          f"(95% CI {_ci(s['preference_ci'], 3)}), binomial p {_p(s['preference_p'])}, ties {s['preference_ties']}")
        for msg in results.get("warnings") or []:
            w(self.style.WARNING(f"  warning: {msg}"))
        w(f"Report: {out / REPORT_DIR / 'report.html'}; export: {out / EXPORT_DIR} and {out / EXPORT_ZIP}")
        self.stdout.write(self.style.SUCCESS("[100%] Done"))
