"""Expert pages: the rating worklist and the blinded rating page. Thin: selectors build what is shown
(already blinded), services do the writes, TrialError becomes a message."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views import View

from core.errors import TrialError
from inference.services import set_arena_model_versions
from trial.models import Trial
from trial.selectors import trial_or_404
from trial.signatures import submission_signature

from . import selectors, services
from .forms import ArenaDrawForm, ArenaVersionsForm

ANSWER_FIELDS = ("preference", "quality_a", "quality_b", "comment", "blinding_guess")


def worklist(request, trial_code: str):
    trial = trial_or_404(trial_code)
    payload = selectors.worklist_payload(request.user, trial, page=request.GET.get("page"))
    arena = selectors.arena_progress(selectors.arena_worklist(request.user, trial))
    return render(request, "rating/worklist.html", {"trial": trial, "wl": payload, "locked": trial.is_locked,
                                                    "arena": arena})


def task(request, trial_code: str, public_id: str):
    trial = trial_or_404(trial_code)
    rating = selectors.rating_for_expert(request.user, trial, public_id)
    status = 200
    if request.method == "POST":  # the form works without JavaScript too
        data = {k: request.POST.get(k) for k in ANSWER_FIELDS if k in request.POST}
        try:
            _, created = services.submit_rating(request.user, rating, data,
                                                signature=submission_signature(request.POST.get("password")))
        except TrialError as exc:
            messages.error(request, exc.message)
            status = exc.status
        else:
            messages.success(request, "Rating submitted." if created else "This rating was already submitted.")
            return redirect("rating:worklist", trial_code=trial.code)
    else:
        try:
            rating = services.open_rating(request.user, rating)
        except TrialError as exc:
            messages.error(request, exc.message)
    rating = selectors.rating_for_expert(request.user, trial, public_id)
    payload = selectors.task_payload(rating)
    position = selectors.position_of(request.user, trial, rating)
    ctx = {
        "trial": trial,
        "task": payload,
        "position": position,
        "progress": selectors.worklist_progress(selectors.worklist(request.user, trial)),
        "readonly": payload["submitted"] or trial.is_locked,
        "locked": trial.is_locked,
        "config": {
            "id": payload["id"],
            "kind": payload["kind"],
            "ask_guess": payload["guess"]["asked"],
            "answer": payload["answer"],
            "images": payload["images"],
            "readonly": payload["submitted"] or trial.is_locked,
            "api": f"/api/rating/{trial.code}/{payload['id']}/",
            "worklist": f"/rating/{trial.code}/",
        },
    }
    return render(request, "rating/task.html", ctx, status=status)


class RatingAmendView(View):
    """Amend a submitted rating (issue 18): its expert, or a coordinator of the trial (the one page for both;
    ``selectors.rating_for_amendment`` decides who may). The task's reports (A/B, blinded as on the task page), the
    latest answer in a form, a required reason, and the amendment history. Before lock only; the service decides
    and its refusals are shown on the page. Nothing here names an arm, for either."""

    template_name = "rating/amend.html"

    def _context(self, request, rating, answer: dict, *, reason: str = "", error: str = "") -> dict:
        trial = rating.case.trial
        return {"trial": trial, "task": selectors.task_payload(rating), "answer": answer, "reason": reason,
                "error": error, "history": selectors.rating_amendment_history(rating), "readonly": trial.is_locked,
                "as_coordinator": rating.expert.user_id != request.user.pk, "case_id": rating.case_id}

    def get(self, request, trial_code: str, public_id: str):
        trial = trial_or_404(trial_code)
        rating = selectors.rating_for_amendment(request.user, trial, public_id)
        unsubmitted = rating.status != rating.Status.DONE
        if unsubmitted and rating.expert.user_id == request.user.pk:
            messages.error(request, "Only a submitted rating can be amended; until then, change and submit it.")
            return redirect("rating:task", trial_code=trial.code, public_id=rating.public_id)
        if unsubmitted:  # a coordinator: the task page is the expert's; say why here, with nothing to change
            ctx = self._context(request, rating, selectors.current_rating_answer(rating),
                                error="Only a submitted rating can be amended: the expert has not submitted it yet.")
            return render(request, self.template_name, {**ctx, "readonly": True}, status=409)
        error = f"Trial {trial.code} is locked: ratings are read-only." if trial.is_locked else ""
        return render(request, self.template_name,
                      self._context(request, rating, selectors.current_rating_answer(rating), error=error))

    def post(self, request, trial_code: str, public_id: str):
        trial = trial_or_404(trial_code)
        rating = selectors.rating_for_amendment(request.user, trial, public_id)
        answer = {k: request.POST.get(k) for k in ANSWER_FIELDS if k in request.POST}
        reason = request.POST.get("reason", "")
        try:
            amendment, created = services.amend_rating(actor=request.user, rating=rating, answer=answer, reason=reason)
        except TrialError as exc:
            typed = {k: int(v) if k.startswith("quality_") and str(v).isdigit() else v for k, v in answer.items()}
            shown = {**selectors.current_rating_answer(rating), **typed}
            return render(request, self.template_name,
                          self._context(request, rating, shown, reason=reason, error=exc.message), status=exc.status)
        messages.success(request, f"Amendment {amendment.number} saved." if created
                         else f"Amendment {amendment.number} was already saved; it is kept as it was.")
        return redirect("rating:amend", trial_code=trial.code, public_id=rating.public_id)


# -- the standalone arena (issue 20 item 1): the expert's worklist and comparison page -----------------------------
ARENA_FIELDS = ("preference", "quality_a", "quality_b", "comment")


class ArenaWorklistView(View):
    """The expert's arena tasks (only those the blinding rule makes available)."""

    def get(self, request, trial_code: str):
        trial = trial_or_404(trial_code)
        payload = selectors.arena_worklist_payload(request.user, trial, page=request.GET.get("page"))
        return render(request, "rating/arena_worklist.html", {"trial": trial, "wl": payload,
                                                              "locked": trial.is_locked})


class ArenaTaskView(View):
    """Compare two drafts of a case as A and B (blinded: no model named). The form works without JavaScript; the
    page's module autosaves and submits through the arena API."""

    def _render(self, request, trial, task, status: int = 200):
        payload = selectors.arena_task_payload(task)
        readonly = payload["submitted"] or trial.is_locked
        ctx = {
            "trial": trial, "task": payload, "readonly": readonly, "locked": trial.is_locked,
            "position": selectors.arena_position_of(request.user, trial, task),
            "progress": selectors.arena_progress(selectors.arena_worklist(request.user, trial)),
            "config": {"id": payload["id"], "answer": payload["answer"], "images": payload["images"],
                       "readonly": readonly, "api": f"/api/arena/{trial.code}/{payload['id']}/",
                       "worklist": f"/arena/{trial.code}/"},
        }
        return render(request, "rating/arena_task.html", ctx, status=status)

    def get(self, request, trial_code: str, public_id: str):
        trial = trial_or_404(trial_code)
        task = selectors.arena_task_for_expert(request.user, trial, public_id)
        try:
            services.open_arena_task(request.user, task)
        except TrialError as exc:
            messages.error(request, exc.message)
        return self._render(request, trial, selectors.arena_task_for_expert(request.user, trial, public_id))

    def post(self, request, trial_code: str, public_id: str):
        trial = trial_or_404(trial_code)
        task = selectors.arena_task_for_expert(request.user, trial, public_id)
        data = {k: request.POST.get(k) for k in ARENA_FIELDS if k in request.POST}
        try:
            _, created = services.submit_arena_task(request.user, task, data,
                                                    signature=submission_signature(request.POST.get("password")))
        except TrialError as exc:
            messages.error(request, exc.message)
            return self._render(request, trial, selectors.arena_task_for_expert(request.user, trial, public_id),
                                status=exc.status)
        messages.success(request, "Judgement submitted." if created else "This judgement was already submitted.")
        return redirect("arena:worklist", trial_code=trial.code)


class ArenaAmendView(View):
    """Amend a submitted arena judgement: its expert only (``selectors.arena_task_for_expert``: 404 for anyone else),
    before lock, with a reason, signed where the trial signs submissions. The drafts (A/B, as on the task page), the
    latest answer in a form, and the amendment history; the service decides and its refusals are shown here."""

    template_name = "rating/arena_amend.html"

    def _render(self, request, task, answer: dict, *, reason: str = "", error: str = "", status: int = 200):
        trial = task.case.trial
        ctx = {"trial": trial, "task": selectors.arena_task_payload(task), "answer": answer, "reason": reason,
               "error": error, "history": selectors.arena_amendment_history(task), "readonly": trial.is_locked}
        return render(request, self.template_name, ctx, status=status)

    def get(self, request, trial_code: str, public_id: str):
        trial = trial_or_404(trial_code)
        task = selectors.arena_task_for_expert(request.user, trial, public_id)
        if task.status != task.Status.DONE:
            messages.error(request, "Only a submitted judgement can be amended; until then, change and submit it.")
            return redirect("arena:task", trial_code=trial.code, public_id=task.public_id)
        error = f"Trial {trial.code} is locked: arena judgements are read-only." if trial.is_locked else ""
        return self._render(request, task, selectors.current_arena_answer(task), error=error)

    def post(self, request, trial_code: str, public_id: str):
        trial = trial_or_404(trial_code)
        task = selectors.arena_task_for_expert(request.user, trial, public_id)
        answer = {k: request.POST.get(k) for k in ARENA_FIELDS if k in request.POST}
        reason = request.POST.get("reason", "")
        try:
            amendment, created = services.amend_arena_task(
                actor=request.user, task=task, answer=answer, reason=reason,
                signature=submission_signature(request.POST.get("password")))
        except TrialError as exc:
            typed = {k: int(v) if k.startswith("quality_") and str(v).isdigit() else v for k, v in answer.items()}
            return self._render(request, task, {**selectors.current_arena_answer(task), **typed}, reason=reason,
                                error=exc.message, status=exc.status)
        messages.success(request, f"Amendment {amendment.number} saved." if created
                         else f"Amendment {amendment.number} was already saved; it is kept as it was.")
        return redirect("arena:amend", trial_code=trial.code, public_id=task.public_id)


# -- the standalone arena's coordinator page (issue 20 item 1): versions, draw, progress ------------------------------
class ArenaSetupView(View):
    """The arena's model versions, the draw of its tasks, and its progress. The selector refuses (403) anyone but a
    coordinator who neither reads nor rates in the trial, as the API does; one form per POST, named by ``action``."""

    def get(self, request, trial_code: str):
        trial = trial_or_404(trial_code)
        return self._page(request, trial)

    def post(self, request, trial_code: str):
        trial = trial_or_404(trial_code)
        page = selectors.arena_coordinator_page(request.user, trial)  # the permission check, before any input
        action = request.POST.get("action")
        if action == "versions":
            form = ArenaVersionsForm(request.POST)
            if form.is_valid() and self._run(request, set_arena_model_versions, trial,
                                             model_versions=form.cleaned_data["model_versions"]):
                messages.success(request, "Arena model versions saved.")
                return redirect("arena:setup", trial_code=trial.code)
            return self._page(request, trial, versions_form=form, status=400, page=page)
        if action == "draw":
            form = ArenaDrawForm(request.POST, trial=trial)
            if form.is_valid():
                d = form.cleaned_data
                draw = self._run(request, services.create_arena_tasks, trial, sample_size=d["sample_size"],
                                 experts=list(d["experts"]) or None)
                if draw:
                    messages.success(request, f"Drew {draw.tasks_made} new arena task(s) over {draw.cases_in_arena} "
                                              f"case(s); {draw.cases_without_pair} case(s) lack two usable drafts.")
                    return redirect("arena:setup", trial_code=trial.code)
            return self._page(request, trial, draw_form=form, status=400, page=page)
        messages.error(request, "Choose what to do: save the versions or draw the tasks.")
        return self._page(request, trial, status=400, page=page)

    @staticmethod
    def _run(request, service, trial: Trial, **kwargs):
        try:
            return service(actor=request.user, trial=trial, **kwargs)
        except TrialError as exc:
            messages.error(request, exc.message)
            return None

    def _page(self, request, trial: Trial, versions_form=None, draw_form=None, status: int = 200, page=None):
        page = page or selectors.arena_coordinator_page(request.user, trial)
        versions_form = versions_form or ArenaVersionsForm(
            initial={"model_versions": [mv.name for mv in page["versions"]]})
        draw_form = draw_form or ArenaDrawForm(trial=trial)
        ctx = {"trial": trial, "arena": page, "versions_form": versions_form, "draw_form": draw_form}
        return render(request, "rating/arena_setup.html", ctx, status=status)
