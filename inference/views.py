"""Coordinator page for drafts: queue depth, ready/failed counts, per-draft timing, retry of failed drafts."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.errors import TrialError
from trial.blinding import require_not_blinded
from trial.models import Trial
from trial.permissions import Role, require_role

from . import selectors, services
from .models import Draft


def drafts_page(request, trial_code: str):
    trial = get_object_or_404(Trial, code=trial_code)
    require_role(request.user, trial, Role.COORDINATOR)
    require_not_blinded(request.user, trial)  # drafts of cases the person reads or rates
    status = request.GET.get("status", "")
    drafts = selectors.drafts_for_trial(trial, status=status)
    ctx = {
        "trial": trial,
        "summary": selectors.draft_summary(trial),
        "queue_depth": selectors.queue_depth(),
        "drafts": Paginator(drafts, 50).get_page(request.GET.get("page")),
        "status": status,
        "statuses": Draft.Status.choices,
    }
    return render(request, "inference/drafts.html", ctx)


@require_POST
def retry(request, trial_code: str, draft_id: int):
    trial = get_object_or_404(Trial, code=trial_code)
    require_role(request.user, trial, Role.COORDINATOR)
    require_not_blinded(request.user, trial)  # drafts of cases the person reads or rates
    draft = get_object_or_404(Draft, pk=draft_id, case__trial=trial)
    try:
        services.retry_draft(request.user, draft)
        messages.success(request, f"Draft for case {draft.case.code} queued again.")
    except TrialError as exc:
        messages.error(request, exc.message)
    return redirect("inference:drafts", trial_code=trial_code)
