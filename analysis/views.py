"""The statistician's page: runs, progress, downloads. Files are served through permission-checked views only."""
from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.errors import TrialError
from trial.blinding import require_not_blinded
from trial.models import Signature, Trial
from trial.permissions import Role, has_role, require_role
from trial.signatures import SignatureInput

from . import services
from .models import AnalysisRun


def _trial(request, trial_code: str) -> Trial:
    trial = get_object_or_404(Trial, code=trial_code)
    require_role(request.user, trial, *services.ANALYSIS_ROLES)
    require_not_blinded(request.user, trial)  # a statistician who also reads or rates (trial/blinding.py)
    return trial


def _run(trial: Trial, run_id: int) -> AnalysisRun:
    return get_object_or_404(AnalysisRun, pk=run_id, trial=trial)


def analysis_page(request, trial_code: str):
    trial = _trial(request, trial_code)
    if request.method == "POST":
        try:
            run = services.request_analysis(request.user, trial)
        except TrialError as exc:
            messages.error(request, exc.message)
        else:
            run.refresh_from_db()
            if run.status == AnalysisRun.Status.FAILED:
                messages.error(request, f"Analysis run {run.pk} failed: {run.message}")
            else:
                messages.success(request, f"Analysis run {run.pk} requested.")
        return redirect("analysis:page", trial_code=trial.code)
    runs = list(AnalysisRun.objects.filter(trial=trial).select_related("requested_by")[:50])
    for r in runs:
        r.files = services.run_files(r)
    latest = next((r for r in runs if r.status == AnalysisRun.Status.DONE), None)
    figures = [f for f in (latest.files if latest else []) if f["name"].endswith(".png")]
    final = AnalysisRun.objects.filter(trial=trial, final_at__isnull=False).select_related("final_by").first()
    can_declare = (final is None and latest is not None and latest.arms_masked is False and trial.is_locked
                   and has_role(request.user, trial, Role.STATISTICIAN))
    ctx = {"trial": trial, "runs": runs, "latest": latest, "figures": figures, "final": final,
           "can_declare": can_declare, "active": [r.pk for r in runs if r.is_active]}
    return render(request, "analysis/page.html", ctx)


@require_POST
def declare_final(request, trial_code: str, run_id: int):
    """A statistician declares a run final with their electronic signature (password re-entered)."""
    trial = _trial(request, trial_code)
    run = _run(trial, run_id)
    password = request.POST.get("password") or ""
    meaning = request.POST.get("meaning") or Signature.Meaning.APPROVAL
    try:
        services.declare_final(actor=request.user, run=run,
                               signature=SignatureInput(password, meaning) if password else None)
    except TrialError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Analysis run {run.pk} is declared final and signed.")
    return redirect("analysis:page", trial_code=trial.code)


@require_GET
def run_file(request, trial_code: str, run_id: int, name: str):
    trial = _trial(request, trial_code)
    run = _run(trial, run_id)
    path = services.resolve_run_file(run, name)
    if path is None:
        raise Http404("No such file in this analysis run.")
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    attach = request.GET.get("download") == "1" or path.suffix in (".zip", ".json")
    filename = f"{trial.code}-run{run.pk}-{path.name}"
    resp = FileResponse(path.open("rb"), content_type=ctype, as_attachment=attach, filename=filename)
    resp["Cache-Control"] = "private, no-store"
    if path.suffix == ".html":
        # Our own generated page: inline styles and images only, no scripts.
        resp["Content-Security-Policy"] = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
    return resp
