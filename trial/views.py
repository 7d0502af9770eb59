"""Coordinator pages. Thin: forms in, services do the work, TrialError becomes a message."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django.views.decorators.http import require_POST

from core.accounts import needs_invitation, send_invitation
from core.errors import TrialError

from . import selectors, services
from .blinding import is_blinded_participant
from .forms import (
    SETTING_FIELDS,
    AllocationListForm,
    ArmEditForm,
    ArmForm,
    CaseForm,
    CenterEditForm,
    CenterForm,
    MemberEditForm,
    MemberForm,
    ReasonForm,
    SettingsForm,
    StatusForm,
    TrialForm,
)
from .models import Arm, Case, Center, Membership, Signature, Trial
from .permissions import Role, can_create_trials, require_role
from .signatures import SignatureInput


def home(request):
    """Landing page: what each of the user's roles should do next."""
    memberships = (
        Membership.objects.filter(user=request.user).select_related("trial", "center").order_by("trial__code", "role")
    )
    return render(
        request, "trial/home.html", {"memberships": memberships, "can_create": can_create_trials(request.user)}
    )


def _trial(request, trial_code: str, *roles: str) -> Trial:
    trial = get_object_or_404(Trial, code=trial_code)
    require_role(request.user, trial, *(roles or (Role.COORDINATOR,)))
    return trial


def _run(request, fn, *args, success: str, **kwargs):
    try:
        result = fn(request.user, *args, **kwargs)
    except TrialError as exc:
        messages.error(request, exc.message)
        return None, False
    messages.success(request, success)
    return result, True


def trial_create(request):
    if not can_create_trials(request.user):
        return render(request, "403.html", {"message": "You may not create trials."}, status=403)
    form = TrialForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        trial, ok = _run(
            request, services.create_trial, code=d["code"], title=d["title"], design=d["design"],
            findings=d["findings"], success="Trial created.", **{f: d[f] for f in SETTING_FIELDS},
        )
        if ok:
            return redirect("trial:detail", trial_code=trial.code)
    return render(request, "trial/trial_form.html", {"form": form})


def trial_detail(request, trial_code: str):
    trial = _trial(request, trial_code)
    cases = Paginator(trial.cases.select_related("center", "arm").prefetch_related("images").order_by("code"),
                      50).get_page(request.GET.get("page"))
    ctx = {
        "trial": trial,
        "progress": selectors.trial_progress(trial),
        "centers": trial.centers.all(),
        "arms": trial.arms.select_related("model_assignment__model_version"),
        "members": trial.memberships.select_related("user", "center", "arm").order_by("role", "user__username"),
        "cases": cases,
        "allocation_list": selectors.allocation_list_summary(request.user, trial),
        "center_form": CenterForm(),
        "arm_form": ArmForm(),
        "member_form": MemberForm(trial=trial),
        "case_form": CaseForm(trial=trial),
        "list_form": AllocationListForm(),
        "next_status": _next_status(trial),
        "show_arms": not is_blinded_participant(request.user, trial),
        "in_setup": trial.status == Trial.Status.SETUP,
        "sealed": allocation_sealed(trial),
        "experience_choices": Membership.Experience.choices,
        "remind_statuses": ("enrolling", "reading", "rating"),
    }
    return render(request, "trial/trial_detail.html", ctx)


def _next_status(trial: Trial) -> str | None:
    return selectors.next_status(trial)


def _form_errors(request, form) -> None:
    for field, errs in form.errors.items():
        label = form.fields[field].label or field.replace("_", " ") if field in form.fields else ""
        for e in errs:
            messages.error(request, f"{label.capitalize()}: {e}" if label else e)


def _post_form(request, trial_code: str, form_class, service, success: str, with_trial: bool = False):
    """The shared shape of the coordinator's add-forms: validate, call one service, say what happened."""
    trial = _trial(request, trial_code)
    form = form_class(request.POST, **({"trial": trial} if with_trial else {}))
    if form.is_valid():
        _run(request, service, trial, success=success, **form.cleaned_data)
    else:
        _form_errors(request, form)
    return redirect("trial:detail", trial_code=trial_code)


@require_POST
def center_add(request, trial_code: str):
    return _post_form(request, trial_code, CenterForm, services.add_center, "Center added.")


@require_POST
def arm_add(request, trial_code: str):
    return _post_form(request, trial_code, ArmForm, services.add_arm, "Arm added.")


@require_POST
def member_add(request, trial_code: str):
    trial = _trial(request, trial_code)
    form = MemberForm(request.POST, trial=trial)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("trial:detail", trial_code=trial_code)
    m, ok = _run(request, services.add_member_by_username, trial, success="Person added.", **form.cleaned_data)
    if ok and needs_invitation(m.user):
        _invite(request, m.user, trial)
    return redirect("trial:detail", trial_code=trial_code)


def _invite(request, user, trial: Trial) -> None:
    """A person added without a password gets a one-time set-password link by email (core/accounts.py)."""
    if send_invitation(user, domain=request.get_host(), use_https=request.is_secure(),
                       invited_to=f"{trial.code} ({trial.title})"):
        messages.success(request, f"An invitation to set a password was emailed to {user.email}.")
    else:
        messages.error(request, f"{user.username} has no password and no email address: they cannot log in until "
                                "an administrator gives them an email (then password reset works) or a password.")


@require_POST
def case_add(request, trial_code: str):
    return _post_form(request, trial_code, CaseForm, services.add_case, "Case added.", with_trial=True)


@require_POST
def allocation_generate(request, trial_code: str):
    trial = _trial(request, trial_code)
    form = AllocationListForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        signature = SignatureInput(d["password"], d["meaning"] or Signature.Meaning.APPROVAL) if d["password"] else None
        _run(request, services.generate_allocation_list, trial, block_sizes=d["block_sizes"],
             slots_per_stratum=d["slots_per_stratum"], stratify_by_experience=d["stratify_by_experience"],
             signature=signature, success="Allocation list generated and sealed.")
    else:
        _form_errors(request, form)
    return redirect("trial:detail", trial_code=trial_code)


@require_POST
def enrol_reader(request, trial_code: str, member_id: int):
    trial = _trial(request, trial_code)
    m = get_object_or_404(Membership, pk=member_id, trial=trial)
    _run(request, services.enrol_reader, m, success=f"{m.user.username} enrolled.")
    return redirect("trial:detail", trial_code=trial_code)


@require_POST
def enrol_case(request, trial_code: str, case_id: int):
    trial = _trial(request, trial_code)
    case = get_object_or_404(Case, pk=case_id, trial=trial)
    _run(request, services.enrol_case, case, success=f"Case {case.code} enrolled.")
    return redirect("trial:detail", trial_code=trial_code)


@require_POST
def enrol_all(request, trial_code: str):
    trial = _trial(request, trial_code)
    try:
        done, problems = services.enrol_all_imported(request.user, trial)
    except TrialError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{done} case(s) enrolled.")
        for p in problems[:10]:
            messages.error(request, p)
    return redirect("trial:detail", trial_code=trial_code)


class StatusChangeView(View):
    """GET: the confirmation (what the next status would leave outstanding, a reason field, the signature fields
    where the trial requires them); POST: the change. A refusal (e.g. work outstanding and no reason, a wrong
    password) shows the confirmation again with the message."""

    def get(self, request, trial_code: str):
        trial = _trial(request, trial_code)
        preview = selectors.status_preview(request.user, trial)
        return render(request, "trial/status_confirm.html", {"trial": trial, "preview": preview})

    def post(self, request, trial_code: str):
        trial = _trial(request, trial_code)
        form = StatusForm(request.POST)
        if not form.is_valid():
            _form_errors(request, form)
            return redirect("trial:status", trial_code=trial_code)
        d = form.cleaned_data
        signature = SignatureInput(d["password"], d["meaning"] or Signature.Meaning.APPROVAL) if d["password"] else None
        _, ok = _run(request, services.advance_status, trial, d["to_status"], reason=d["reason"], signature=signature,
                     success="Status changed.")
        return redirect("trial:detail" if ok else "trial:status", trial_code=trial_code)


def allocations(request, trial_code: str):
    trial = _trial(request, trial_code)
    slots = Paginator(selectors.revealed_allocations(request.user, trial), 100).get_page(request.GET.get("page"))
    return render(request, "trial/allocations.html", {"trial": trial, "slots": slots})


# -- editing setup (issue 17): each change is one service call with a reason; refused after setup ------------------
def allocation_sealed(trial: Trial) -> bool:
    return hasattr(trial, "allocation_list")


class SettingsView(View):
    """Every trial setting, with help text; saved through update_trial_settings with a reason."""

    def get(self, request, trial_code: str):
        trial = _trial(request, trial_code)
        return self._page(request, trial, SettingsForm(trial=trial))

    def post(self, request, trial_code: str):
        trial = _trial(request, trial_code)
        form = SettingsForm(request.POST, trial=trial)
        if form.is_valid():
            d = form.cleaned_data
            changes = {f: d[f] for f in ("title", *SETTING_FIELDS) if d[f] != getattr(trial, f)}
            if not changes:
                messages.info(request, "Nothing changed.")
                return redirect("trial:detail", trial_code=trial_code)
            _, ok = _run(request, services.update_trial_settings, trial, reason=d["reason"],
                         success=f"Settings saved ({', '.join(sorted(changes))}).", **changes)
            if ok:
                return redirect("trial:detail", trial_code=trial_code)
        return self._page(request, trial, form, status=400)

    def _page(self, request, trial: Trial, form, status: int = 200):
        return render(request, "trial/settings.html", {"trial": trial, "form": form}, status=status)


def _setup_change(request, trial_code: str, form, service, obj, success: str, **extra):
    if form.is_valid():
        data = {**form.cleaned_data, **extra}
        _run(request, service, obj, success=success, **data)
    else:
        _form_errors(request, form)
    return redirect("trial:detail", trial_code=trial_code)


@require_POST
def center_edit(request, trial_code: str, center_id: int):
    trial = _trial(request, trial_code)
    center = get_object_or_404(Center, pk=center_id, trial=trial)
    return _setup_change(request, trial_code, CenterEditForm(request.POST), services.update_center, center,
                         "Center changed.")


@require_POST
def center_remove(request, trial_code: str, center_id: int):
    trial = _trial(request, trial_code)
    center = get_object_or_404(Center, pk=center_id, trial=trial)
    return _setup_change(request, trial_code, ReasonForm(request.POST), services.remove_center, center,
                         "Center removed.")


@require_POST
def arm_edit(request, trial_code: str, arm_id: int):
    trial = _trial(request, trial_code)
    arm = get_object_or_404(Arm, pk=arm_id, trial=trial)
    return _setup_change(request, trial_code, ArmEditForm(request.POST), services.update_arm, arm, "Arm changed.")


@require_POST
def arm_remove(request, trial_code: str, arm_id: int):
    trial = _trial(request, trial_code)
    arm = get_object_or_404(Arm, pk=arm_id, trial=trial)
    return _setup_change(request, trial_code, ReasonForm(request.POST), services.remove_arm, arm, "Arm removed.")


@require_POST
def member_edit(request, trial_code: str, member_id: int):
    trial = _trial(request, trial_code)
    member = get_object_or_404(Membership, pk=member_id, trial=trial)
    return _setup_change(request, trial_code, MemberEditForm(request.POST, trial=trial), services.update_member,
                         member, "Person changed.")


@require_POST
def member_remove(request, trial_code: str, member_id: int):
    """Removes a person's role in the trial (the service refuses an enrolled reader)."""
    trial = _trial(request, trial_code)
    member = get_object_or_404(Membership, pk=member_id, trial=trial)
    return _setup_change(request, trial_code, ReasonForm(request.POST), services.remove_member, member,
                         "Person removed.")
