"""Reader pages: the worklist and the read page (viewer and form side by side). Thin: the selectors decide what a
reader sees (availability, blinding), the services do the writes; the page's JavaScript talks to the reading API."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views import View
from django.views.decorators.http import require_POST

from core.errors import TrialError, TrialLocked
from trial.blinding import is_blinded_participant
from trial.models import Trial
from trial.selectors import trial_or_404
from trial.signatures import submission_signature

from . import selectors, services

PAGE_KEYS = ("public_id", "trial", "case", "arm", "status", "findings", "report", "opened_at", "submitted_at",
             "autosaved_at", "active_seconds", "wall_seconds", "images", "urls")


def _trial(code: str) -> Trial:
    return trial_or_404(code)


def worklist(request, trial_code: str):
    trial = _trial(trial_code)
    summary = selectors.worklist_summary(request.user, trial, page=request.GET.get("page"))
    return render(request, "reading/worklist.html", {"trial": trial, **summary})


def next_read(request, trial_code: str):
    trial = _trial(trial_code)
    public_id = selectors.next_read_id_for(request.user, trial)
    if public_id is None:
        messages.info(request, "No read is waiting for you right now.")
        return redirect("reading:worklist", trial_code=trial.code)
    return redirect("reading:read", trial_code=trial.code, public_id=public_id)


def read_page(request, trial_code: str, public_id: str):
    trial = _trial(trial_code)
    selectors.check_own_read(request.user, public_id, trial)  # 404 as read_for_reader, without loading it
    notice = ""
    try:
        # Opens (or resumes) it, loading it once under its lock (issue 19); a submitted read comes back as it is.
        read = services.open_read(request.user, public_id)
    except TrialLocked as exc:
        read = selectors.read_for_reader(request.user, public_id, trial)
        notice = "" if read.is_submitted else exc.message
    except TrialError as exc:
        return render(request, "reading/unavailable.html", {"trial": trial, "message": exc.message},
                      status=exc.status)
    payload = selectors.read_payload(read)
    # The page's generic JSON never holds the draft; an AI page gets its hints in a separate block.
    page_data = {k: payload[k] for k in PAGE_KEYS}
    page_data["readonly"] = read.is_submitted or trial.is_locked
    assist = payload.get("draft")
    marks = payload["report"]["finding_marks"]
    rows = [
        {
            "code": f["code"],
            "label": f["label"],
            "present": (marks.get(f["code"]) or {}).get("present"),
            "confidence": (marks.get(f["code"]) or {}).get("confidence"),
            **shown_probability(assist, f["code"]),
        }
        for f in payload["findings"]
    ]
    # The draft's boxes for the viewer, in their own block too (none for a withheld draft: selectors.assist_data)
    ai_boxes = {"boxes": assist["boxes"], "image_size": assist.get("boxes_image_size"),
                "reviews": assist.get("box_reviews") or {}} if assist and assist["boxes"] else None
    ctx = {"trial": trial, "read": read, "page_data": page_data, "assist": assist, "rows": rows, "ai_boxes": ai_boxes,
           "box_rows": _box_rows(ai_boxes, payload["findings"]),
           "ai_calibration": calibration_note(assist, rows),
           "notice": notice, "confidences": range(1, 6), "readonly": page_data["readonly"],
           "clinical": selectors.clinical_context(read.case), "prefetch_url": selectors.next_display_url(read)}
    return render(request, "reading/read.html", ctx)


def _box_rows(ai_boxes: dict | None, findings: list[dict]) -> list[dict]:
    """The accept/reject list beside the viewer (issue 21 item 1): each box's words and the reader's decision."""
    if not ai_boxes:
        return []
    labels = {f["code"]: f["label"] for f in findings}
    rows = []
    for n, b in enumerate(ai_boxes["boxes"], start=1):
        finding = labels.get(b["finding"]) or b["finding"] or "Finding"
        text = f"{finding}: {b['label']}" if b.get("label") and b["label"] != finding else finding
        rows.append({"id": b["id"], "n": n, "text": text, "decision": ai_boxes["reviews"].get(b["id"], "")})
    return rows


def shown_probability(assist: dict | None, code: str) -> dict:
    """The AI's probability of one finding as the reader sees it: calibrated where the draft has a calibrated
    value, else the raw output marked uncalibrated (docs/calibration.md)."""
    if not assist:
        return {"probability": None, "calibrated": False}
    calibrated = assist.get("calibrated_probabilities") or {}
    if code in calibrated:
        return {"probability": calibrated[code], "calibrated": True}
    return {"probability": assist["probabilities"].get(code), "calibrated": False}


def calibration_note(assist: dict | None, rows: list[dict]) -> dict | None:
    """The line under the findings table that says what the AI percentages are (None: no percentages shown)."""
    if not assist or not any(r["probability"] is not None for r in rows):
        return None
    cal = assist.get("calibration")
    return {"calibrated": cal is not None,
            "label": f"{cal['label']} (Platt scaling)" if cal else "as the model's uncalibrated output",
            "some_uncalibrated": cal is not None and any(r["probability"] is not None and not r["calibrated"]
                                                         for r in rows)}


def _report_from_form(trial: Trial, post) -> dict:
    """The no-JavaScript form: present_<code> = present/absent, confidence_<code> = 1-5."""
    marks = {}
    for code in trial.finding_codes:
        present = {"present": True, "absent": False}.get(post.get(f"present_{code}", ""))
        conf = post.get(f"confidence_{code}", "")
        marks[code] = {"present": present, "confidence": int(conf) if conf.isdigit() else None}
    return {"findings_text": post.get("findings_text", ""), "impression_text": post.get("impression_text", ""),
            "finding_marks": marks}


@require_POST
def read_submit(request, trial_code: str, public_id: str):
    """Submit without JavaScript. A repeat is answered with the saved result."""
    trial = _trial(trial_code)
    read = selectors.read_for_reader(request.user, public_id, trial)
    try:
        read, created = services.submit_read(request.user, read, _report_from_form(trial, request.POST),
                                             signature=submission_signature(request.POST.get("password")))
    except TrialError as exc:
        messages.error(request, exc.message)
        return redirect("reading:read", trial_code=trial.code, public_id=read.public_id)
    messages.success(
        request, "Report submitted." if created else "This read was already submitted; it is kept as it was."
    )
    return redirect("reading:worklist", trial_code=trial.code)


class ReadAmendView(View):
    """Amend a submitted read (issue 18): its reader, or a coordinator of the trial (the one page for both;
    ``selectors.read_for_amendment`` decides who may). The latest version in a form, a required reason, and the
    amendment history. Before lock only; the service decides, its refusals are shown on the page. The arm is named
    to the read's reader (who knows it) and to a coordinator who is not a blinded participant, never otherwise."""

    template_name = "reading/amend.html"

    def _context(self, read, report: dict, *, reason: str = "", error: str = "") -> dict:
        trial = read.case.trial
        own = read.reader is not None and read.reader.user_id == self.request.user.pk
        return {"trial": trial, "read": read, "rows": selectors.amend_rows(trial, report), "report": report,
                "reason": reason, "error": error, "history": selectors.amendment_history(read),
                "confidences": range(1, 6), "readonly": trial.is_locked, "as_coordinator": not own,
                "show_arm": own or not is_blinded_participant(self.request.user, trial)}

    def _read(self, request, trial_code: str, public_id: str):
        return selectors.read_for_amendment(request.user, public_id, _trial(trial_code))

    def get(self, request, trial_code: str, public_id: str):
        read = self._read(request, trial_code, public_id)
        if not read.is_submitted:
            return render(request, "reading/unavailable.html", {
                "trial": read.case.trial, "message": "Only a submitted read can be amended; until then, edit and "
                "submit it."}, status=409)
        ctx = self._context(read, selectors.current_report(read))
        if read.case.trial.is_locked:
            ctx["error"] = f"Trial {read.case.trial.code} is locked: its data is read-only."
        return render(request, self.template_name, ctx)

    def post(self, request, trial_code: str, public_id: str):
        read = self._read(request, trial_code, public_id)
        report, reason = _report_from_form(read.case.trial, request.POST), request.POST.get("reason", "")
        try:
            amendment, created = services.amend_read(actor=request.user, read=read, report=report, reason=reason)
        except TrialError as exc:
            return render(request, self.template_name, self._context(read, report, reason=reason,
                                                                     error=exc.message), status=exc.status)
        messages.success(request, f"Amendment {amendment.number} saved." if created
                         else f"Amendment {amendment.number} was already saved; it is kept as it was.")
        return redirect("reading:amend", trial_code=read.case.trial.code, public_id=read.public_id)
