"""Export -> analysis -> report, and analysis runs (docs/design.md section 7).

The analysis is computed on DataFrames read back from the CSVs the export wrote, never from the database, so
whatever the report says can be reproduced from the export alone (``analysis.pipeline.analyse_export``).
"""
from __future__ import annotations

import hashlib
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

from core.errors import Conflict, NotAllowed
from inference.backends.chexbert import ChexbertLabeler, ChexbertLoadError, load_chexbert
from trial import audit, signatures
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


def load_chexbert_weights(path: str) -> tuple[ChexbertLabeler | None, str]:
    """CheXbert from a local folder for the model-based text metrics, or (None, why not). Never downloads: with
    no folder configured the metric is "not computed: no local weights" (docs/ai-evaluation.md)."""
    if not path:
        return None, ""
    try:
        return load_chexbert(path, device=settings.CHEXBERT_DEVICE), ""
    except ChexbertLoadError as e:
        return None, str(e)
    except ImportError as e:  # torch/transformers not installed (the demo installs neither)
        return None, f"CheXbert needs torch and transformers ({e})"


def run_analysis(trial: Trial, out_dir: Path, progress: Progress | None = None,
                 chexbert: ChexbertLabeler | str | None = None) -> dict[str, Any]:
    """Export the trial into ``out_dir/export`` (+ ``export.zip``), analyse the CSVs read back and render the
    report into ``out_dir/report``. Returns the results dict (with ``summary``). ``chexbert``: a loaded labeler or
    a local weights folder for CheXbert-F1; None: ``settings.CHEXBERT_WEIGHTS_DIR`` (empty: not computed)."""
    step = progress or (lambda pct, msg: None)
    out_dir = Path(out_dir)
    export_dir = out_dir / EXPORT_DIR
    if export_dir.exists():
        shutil.rmtree(export_dir)
    labeler, error = (chexbert, "") if isinstance(chexbert, ChexbertLabeler) else load_chexbert_weights(
        settings.CHEXBERT_WEIGHTS_DIR if chexbert is None else chexbert)
    if error:
        log.warning("CheXbert-F1 not computed: %s", error)
    if labeler is not None:  # labelling every report can take minutes on a CPU (docs/ai-evaluation.md)
        step(5, "Labelling the reports with CheXbert (local weights)")
    export = build_export(trial, chexbert=labeler, chexbert_error=error)
    export.write(export_dir)
    _zip_dir(export_dir, out_dir / EXPORT_ZIP, arc_root=f"{trial.code}-export")
    step(20, "Export written")

    manifest = export.manifest
    tables = read_export_tables(export_dir)
    typed = analyse_results(tables, manifest)
    results = typed.to_dict()
    results["summary"] = primary_summary(typed).to_dict()
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


# -- declaring a run final (issue 18 item 3) ----------------------------------------------------------------
# What the statistician's signature covers on the run itself; the audit entry adds the SHA-256 of each file.
FINAL_FIELDS = ("status", "finished_at", "data_sha256", "arms_masked", "summary", "output_dir", "final_at",
                "final_by_id")


def _file_hashes(run: AnalysisRun) -> dict[str, str]:
    base = run_dir(run)
    return {f["name"]: hashlib.sha256((base / f["name"]).read_bytes()).hexdigest() for f in run_files(run)}


def declare_final(*, actor, run: AnalysisRun, signature: signatures.SignatureInput | None) -> AnalysisRun:
    """A statistician declares a finished run of the locked trial the final analysis, with their electronic
    signature (approval by default; always required), bound to the run's results and files. One final run per
    trial. A wrong password is recorded before the step's transaction (trial.signatures.check_password_first)."""
    trial = run.trial
    if not has_role(actor, trial, Role.STATISTICIAN) or is_blinded_participant(actor, trial):
        raise NotAllowed("Only a statistician of the trial may declare an analysis run final.")
    signatures.check_password_first(actor, trial, signature, action="analysis:final", obj=run)
    return _declare_final(actor, run, signature)


@transaction.atomic
def _declare_final(actor, run: AnalysisRun, signature) -> AnalysisRun:
    signatures.reauthenticate(actor, signature)
    run = AnalysisRun.objects.select_for_update().select_related("trial").get(pk=run.pk)
    trial = run.trial
    if run.status != AnalysisRun.Status.DONE:
        raise Conflict("Only a finished analysis run can be declared final.", code="not_done")
    if run.arms_masked or trial.status != Trial.Status.LOCKED:
        raise Conflict("Only a run of the locked trial, with the arms unmasked, can be the final analysis.",
                       code="not_locked")
    if AnalysisRun.objects.filter(trial=trial, final_at__isnull=False).exists():
        raise Conflict("This trial already has a final analysis run.", code="already_final")
    run.final_at, run.final_by = timezone.now(), actor
    run.save(update_fields=["final_at", "final_by"])
    entry = audit.record(actor=actor, trial=trial, action="analysis:final", obj=run, after={
        "run": run.pk, "data_sha256": run.data_sha256, "summary": run.summary, "files": _file_hashes(run),
        "final_at": run.final_at})
    signatures.sign_entry(actor, entry, signature, obj=run, fields=FINAL_FIELDS)
    return run
