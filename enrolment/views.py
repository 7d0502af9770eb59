"""The coordinator's case page (issue 17). Thin: the selector gathers, trial.services.exclude_case writes."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from core.errors import TrialError
from trial import services as trial_services
from trial.models import Trial
from trial.permissions import Role, require_role

from . import selectors, services
from .forms import ExcludeCaseForm


class CaseDetailView(View):
    def get(self, request, trial_code: str, case_id: int):
        case = selectors.case_for_coordinator(request.user, trial_code, case_id)
        return render(request, "enrolment/case_detail.html", {
            "trial": case.trial, "case": selectors.case_overview(request.user, case), "case_id": case.pk,
            "exclude_form": ExcludeCaseForm(),
        })


class CaseExcludeView(View):
    def post(self, request, trial_code: str, case_id: int):
        case = selectors.case_for_coordinator(request.user, trial_code, case_id)
        form = ExcludeCaseForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Excluding a case needs a reason.")
        else:
            try:
                trial_services.exclude_case(request.user, case, form.cleaned_data["reason"])
            except TrialError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Case {case.code} excluded.")
        return redirect("enrolment:case", trial_code=trial_code, case_id=case_id)


class RemindersView(View):
    """The coordinator's "Email reminders" button on the trial page's progress section (issue 17)."""

    def post(self, request, trial_code: str):
        trial = get_object_or_404(Trial, code=trial_code)
        require_role(request.user, trial, Role.COORDINATOR)
        try:
            result = services.send_reminders(actor=request.user, trial=trial,
                                             site_url=request.build_absolute_uri("/"))
        except TrialError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Reminders: {result.summary()}.")
        return redirect("trial:detail", trial_code=trial_code)
