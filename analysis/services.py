"""Export -> analysis -> report, and analysis runs (docs/design.md section 7).

The analysis is computed on DataFrames read back from the CSVs the export wrote, never from the database, so
whatever the report says can be reproduced from the export alone (``analysis.pipeline.analyse_export``).
"""
from __future__ import annotations

import logging
import shutil
import threading
import traceback
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import current_app, signature
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.errors import NotAllowed
from trial import audit
from trial.blinding import BLINDED_MESSAGE, is_blinded_participant
from trial.models import Trial
from trial.permissions import Role, has_role

from .export import build_export
from .models import AnalysisRun
from .pipeline import analyse_results, primary_summary, read_export_tables
from .report import render_report

log = logging.getLogger(__name__)

ANALYSIS_ROLES = (Role.STATISTICIAN, Role.COORDINATOR)
Progress = Callable[[int, str], None]

EXPORT_DIR = "export"
REPORT_DIR = "report"
EXPORT_ZIP = "export.zip"
# Sent by name: analysis.tasks imports this module (the task's body is execute_run), so this one must not import
# it back; AnalysisConfig.ready() imports the task module so that the name resolves in web processes too.
RUN_TASK = "analysis.tasks.run_analysis_task"


def run_analysis(trial: Trial, out_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Export the trial into ``out_dir/export`` (+ ``export.zip``), analyse the CSVs read back and render the
    report into ``out_dir/report``. Returns the results dict (with ``summary``)."""
    step = progress or (lambda pct, msg: None)
    out_dir = Path(out_dir)
    export_dir = out_dir / EXPORT_DIR
    if export_dir.exists():
        shutil.rmtree(export_dir)
    export = build_export(trial)
    export.write(export_dir)
    _zip_dir(export_dir, out_dir / EXPORT_ZIP, arc_root=f"{trial.code}-export")
    step(20, "Export written")

    manifest = export.manifest
    tables = read_export_tables(export_dir)
    typed = analyse_results(tables, manifest)
    results = typed.to_dict()
    results["summary"] = primary_summary(results)
    step(60, "Statistics computed")

    render_report(typed, tables, manifest, out_dir / REPORT_DIR, payload=results)
    step(90, "Figures and report drawn")
    return results


def _zip_dir(src: Path, dest: Path, arc_root: str) -> Path:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for p in sorted(src.iterdir()):
            if p.is_file():
                z.write(p, f"{arc_root}/{p.name}")
    return dest


def can_analyse(user, trial: Trial) -> bool:
    """Statisticians and coordinators, unless they also read or rate in the unlocked trial (trial/blinding.py)."""
    return has_role(user, trial, *ANALYSIS_ROLES) and not is_blinded_participant(user, trial)


def run_dir(run: AnalysisRun) -> Path:
    return Path(settings.MEDIA_ROOT) / run.output_dir


@transaction.atomic
def request_analysis(user, trial: Trial) -> AnalysisRun:
    """A statistician or coordinator asks for an analysis; the task is sent when this transaction commits."""
    if is_blinded_participant(user, trial):
        raise NotAllowed(BLINDED_MESSAGE)
    if not can_analyse(user, trial):
        raise NotAllowed("Only the trial's statisticians and coordinators may run the analysis.")
    run = AnalysisRun.objects.create(trial=trial, requested_by=user, message="Queued")
    run.output_dir = f"analysis/{trial.pk}/run-{run.pk}"
    run.save(update_fields=["output_dir"])
    audit.record(actor=user, trial=trial, action="analysis:request", obj=run,
                 after={"run": run.pk, "trial_status": trial.status})
    transaction.on_commit(lambda: send_analysis_task(run.pk))
    return run


def _run_in_thread(run_id: int) -> None:
    try:
        execute_run(run_id)
    finally:
        connection.close()  # this thread's own connection


def send_analysis_task(run_id: int) -> bool:
    """Queue the run. Without a broker (the demo: tasks run in-process) a run would hold the request that asked
    for it until the report is drawn; it runs in a thread of its own instead, and the page polls its progress
    (ANALYSIS_EAGER_IN_THREAD; the tests that need the finished run at once turn it off)."""
    if current_app.conf.task_always_eager and settings.ANALYSIS_EAGER_IN_THREAD:
        threading.Thread(target=_run_in_thread, args=(run_id,), name=f"analysis-run-{run_id}", daemon=True).start()
        return True
    try:
        signature(RUN_TASK, args=(run_id,)).delay()
        return True
    except Exception as exc:  # broker down: the run stays queued and says so
        log.warning("Could not queue analysis run %s: %s", run_id, exc)
        AnalysisRun.objects.filter(pk=run_id, status=AnalysisRun.Status.QUEUED).update(
            message="Could not reach the task queue; request the analysis again later.")
        return False


def _set(run_id: int, **fields: Any) -> None:
    AnalysisRun.objects.filter(pk=run_id).update(**fields)


def execute_run(run_id: int) -> AnalysisRun:
    """Run a queued analysis (the Celery task's body). Progress is written as it goes; failures are recorded."""
    run = AnalysisRun.objects.select_related("trial").get(pk=run_id)
    if run.status == AnalysisRun.Status.DONE:
        return run
    _set(run_id, status=AnalysisRun.Status.RUNNING, progress=5, message="Exporting", started_at=timezone.now(),
         error="")

    def progress(pct: int, msg: str) -> None:
        _set(run_id, progress=pct, message=msg)

    try:
        out = run_dir(run)
        results = run_analysis(run.trial, out, progress=progress)
    except Exception as exc:
        log.exception("Analysis run %s failed", run_id)
        _set(run_id, status=AnalysisRun.Status.FAILED, message=f"Failed: {exc}"[:300], finished_at=timezone.now(),
             error="".join(traceback.format_exception(exc))[-20000:])
    else:
        man = results.get("manifest") or {}
        _set(run_id, status=AnalysisRun.Status.DONE, progress=100, message="Done", finished_at=timezone.now(),
             data_sha256=man.get("data_sha256") or "", arms_masked=bool(man.get("arms_masked")),
             summary=results.get("summary") or {})
    run.refresh_from_db()
    return run


def run_files(run: AnalysisRun) -> list[dict[str, Any]]:
    """Downloadable files of a finished run: name (relative to the run dir), label, size."""
    base = run_dir(run)
    if run.status != AnalysisRun.Status.DONE or not base.is_dir():
        return []
    files = [(EXPORT_ZIP, "Export (CSV tables, data dictionary, manifest)"),
             (f"{REPORT_DIR}/report.html", "Report (HTML)"),
             (f"{REPORT_DIR}/report-standalone.html", "Report, single file with embedded figures"),
             (f"{REPORT_DIR}/results.json", "Results (JSON)")]
    out = [{"name": n, "label": lab, "size": (base / n).stat().st_size} for n, lab in files if (base / n).is_file()]
    fig_dir = base / REPORT_DIR / "figures"
    if fig_dir.is_dir():
        for p in sorted(fig_dir.glob("*.png")):
            out.append({"name": f"{REPORT_DIR}/figures/{p.name}", "label": f"Figure: {p.stem.replace('_', ' ')}",
                        "size": p.stat().st_size})
    return out


def resolve_run_file(run: AnalysisRun, name: str) -> Path | None:
    """The file ``name`` of a finished run, or None when it is not one of the run's files (no path escapes)."""
    if run.status != AnalysisRun.Status.DONE or not name or "\\" in name or name.startswith("/"):
        return None
    base = run_dir(run).resolve()
    try:
        p = (base / name).resolve()
        p.relative_to(base)
    except (ValueError, OSError):
        return None
    allowed = {f["name"] for f in run_files(run)}
    return p if name in allowed and p.is_file() else None
