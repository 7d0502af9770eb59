"""Export and analyse one trial synchronously (the same pipeline as the statistician's "Run analysis")."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from trial.models import Trial

from ...services import EXPORT_DIR, EXPORT_ZIP, REPORT_DIR, load_chexbert_weights, run_analysis


def _ci(ci, nd=2) -> str:
    if not ci or ci[0] is None:
        return "n/a"
    return f"{ci[0]:.{nd}f} to {ci[1]:.{nd}f}"


def _num(x, nd=2) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def _p(p) -> str:
    return "n/a" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _yn(flag) -> str:
    return "n/a" if flag is None else ("yes" if flag else "NO")


def primary_lines(primary: dict, a: str, c: str) -> list[str]:
    """The primary table as text: estimate, CI, p, df, convergence flags, fallback and hierarchy verdict."""
    rows = [("quality", f"Quality difference ({a} - {c})", 2),
            ("reading_time", f"Reading time ratio ({a} / {c})", 3),
            ("preference", f"Share of cases where >= k experts prefer {a}", 3)]
    out = [f"PRIMARY ANALYSIS ({primary.get('hierarchy_text', '')})"]
    for key, label, nd in rows:
        r = primary.get(key) or {}
        df = r.get("df")
        out.append(f"  {label}: {_num(r.get('estimate'), nd)} (95% CI {_ci(r.get('ci'), nd)}), p {_p(r.get('p'))}, "
                   f"df {_num(df, 1)}; converged {_yn(r.get('converged'))}, boundary "
                   f"{'n/a' if r.get('boundary') is None else ('YES' if r.get('boundary') else 'no')}; "
                   f"{'confirmatory' if r.get('confirmatory') else 'NOT confirmatory'}")
        if r.get("fallback"):
            out.append(f"    fallback: {r['fallback']}")
        if r.get("note"):
            out.append(f"    note: {r['note']}")
        det = r.get("details") or {}
        if key == "reading_time" and det.get("percent_reduction") is not None:
            out.append(f"    percent reduction {_num(det['percent_reduction'], 1)}% "
                       f"(95% CI {_ci(det.get('percent_reduction_ci'), 1)})")
        if key == "preference" and det.get("null_share") is not None:
            out.append(f"    k = {det.get('k')}; null share {_num(det['null_share'], 3)}; decisive-pair rate "
                       f"{_num(det.get('decisive_rate'), 3)} (95% CI {_ci(det.get('decisive_rate_ci'), 3)}), "
                       f"p {_p(det.get('decisive_rate_p'))}, ties {det.get('ties')}")
    out.append(f"  engine: {primary.get('engine', 'n/a')}")
    return out


class Command(BaseCommand):
    help = "Export a trial, run the analysis and write the report: OUT/export, OUT/export.zip, OUT/report."

    def add_arguments(self, parser):
        parser.add_argument("--trial", required=True, help="trial code")
        parser.add_argument("--out", required=True, help="output directory")
        parser.add_argument("--chexbert-weights", default=None,
                            help="local CheXbert folder (chexbert.pth + vocab.txt) for CheXbert-F1; default the "
                                 "CHEXBERT_WEIGHTS_DIR setting; '' for none (docs/ai-evaluation.md)")

    def handle(self, *args, **o):
        trial = Trial.objects.filter(code=o["trial"]).first()
        if trial is None:
            raise CommandError(f"No trial {o['trial']}.")
        out = Path(o["out"])

        def progress(pct: int, msg: str) -> None:
            self.stdout.write(f"[{pct:3d}%] {msg}")

        chexbert = o.get("chexbert_weights")
        if chexbert:  # asked for by name: a folder that does not load stops the command before any work
            chexbert, error = load_chexbert_weights(chexbert)
            if error:
                raise CommandError(f"CheXbert weights: {error}")
        results = run_analysis(trial, out, progress=progress, chexbert=chexbert)
        s = results["summary"]  # analysis.pipeline.PrimarySummary, as in results.json
        a, c = s["assisted"], s["control"]
        w = self.stdout.write
        w("")
        w(f"Trial {trial.code} ({results['design']}), arms {'MASKED ' if s['masked'] else ''}{a} vs {c}; "
          f"data sha256 {results['manifest']['data_sha256'][:16]}")
        for line in primary_lines(results.get("primary") or {}, a, c):
            w(line)
        w("Descriptive case-level comparisons (do not account for readers; not valid tests in this design):")
        q, t = results.get("quality") or {}, results.get("reading_time") or {}
        qt = q.get("paired_t") or q.get("welch_t") or {}
        gm = t.get("geometric_mean_ratio") or {}
        w(f"  case-level quality difference {_num(qt.get('estimate'))} (95% CI {_ci(qt.get('ci'))}); "
          f"case-level time ratio {_num(gm.get('estimate'), 3)} (95% CI {_ci(gm.get('ci'), 3)})")
        for msg in results.get("warnings") or []:
            w(self.style.WARNING(f"  warning: {msg}"))
        w(f"Report: {out / REPORT_DIR / 'report.html'}; export: {out / EXPORT_DIR} and {out / EXPORT_ZIP}")
        self.stdout.write(self.style.SUCCESS("[100%] Done"))
