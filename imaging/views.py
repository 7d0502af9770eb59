"""Coordinator upload pages: DICOM files (many at once, a result per file) and the reference-standard CSV."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.errors import TrialError
from trial.models import Case, Trial
from trial.permissions import Role, require_role

from . import services as imports


def upload(request, trial_code: str):
    trial = get_object_or_404(Trial, code=trial_code)
    require_role(request.user, trial, Role.COORDINATOR)
    results, ref = None, None
    if request.method == "POST" and request.POST.get("kind") == "reference":
        f = request.FILES.get("csv")
        if f is None:
            messages.error(request, "Choose a CSV file.")
        else:
            try:
                ref = imports.import_reference_csv(request.user, trial, f.read().decode("utf-8", "replace"))
            except TrialError as exc:
                messages.error(request, exc.message)
            else:
                if ref.errors:
                    messages.error(request, f"Nothing imported: {len(ref.errors)} row(s) have errors.")
                else:
                    messages.success(request, f"Reference standard set for {ref.updated} case(s).")
    elif request.method == "POST":
        center = trial.centers.filter(pk=request.POST.get("center") or 0).first()
        files = request.FILES.getlist("files")
        if center is None:
            messages.error(request, "Choose the center these studies come from.")
        elif not files:
            messages.error(request, "Choose one or more DICOM files.")
        else:
            try:
                results = imports.import_uploads(request.user, trial, center, files)
            except TrialError as exc:
                messages.error(request, exc.message)
            else:
                n_ok = sum(r.status == "imported" for r in results)
                n_dup = sum(r.status == "duplicate" for r in results)
                n_bad = sum(r.status == "refused" for r in results)
                (messages.error if n_bad else messages.success)(
                    request, f"{n_ok} imported, {n_dup} already present, {n_bad} refused.")
    flagged = trial.cases.filter(needs_review=True).prefetch_related("images").order_by("code")
    return render(request, "trial/import.html", {"trial": trial, "centers": trial.centers.all(), "results": results,
                                                 "reference": ref, "flagged": flagged})


@require_POST
def review(request, trial_code: str, case_id: int):
    """Confirm or exclude a case held for review (burned-in annotation); back to the page it came from."""
    trial = get_object_or_404(Trial, code=trial_code)
    require_role(request.user, trial, Role.COORDINATOR)
    case = get_object_or_404(Case, pk=case_id, trial=trial)
    decision = request.POST.get("decision", "")
    try:
        imports.review_case(request.user, case, decision=decision, reason=request.POST.get("reason", "").strip())
    except TrialError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Case {case.code} {'confirmed' if decision == 'confirm' else 'excluded'}.")
    return redirect("trial:detail", trial_code=trial_code)
