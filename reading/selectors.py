"""Reads that respect permissions and blinding."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case as SqlCase
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value, When
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from core.compiled import CompiledQuery
from imaging.models import Image
from imaging.selectors import image_entries
from inference.models import Draft
from inference.ood import warning_text
from inference.selectors import arm_model_version, ready_draft
from inference.similar import library_cases
from trial.blinding import BLINDED_MESSAGE, is_blinded_participant
from trial.models import Case, Membership, Trial
from trial.permissions import Role

from .models import Read


def _status_counts(overdue_before) -> dict:
    """Done, in progress, to do and overdue (not done, made before `overdue_before`) as aggregate expressions."""
    return {
        "done": Count("id", filter=Q(status=Read.Status.DONE)),
        "in_progress": Count("id", filter=Q(status=Read.Status.IN_PROGRESS)),
        "todo": Count("id", filter=Q(status=Read.Status.TODO)),
        "overdue": Count("id", filter=~Q(status=Read.Status.DONE) & Q(created_at__lt=overdue_before)),
    }


def reads_breakdown(trial: Trial, now=None) -> dict:
    """Reads by reader and by the case's center (issue 17). Overdue: not done `trial.overdue_after_days` after the
    read was made (at the case's enrolment). Counts only: no arm, so nothing here is masked before lock."""
    overdue_before = (now or timezone.now()) - timedelta(days=trial.overdue_after_days)
    counts = _status_counts(overdue_before)
    qs = Read.objects.filter(case__trial=trial)
    by_reader = [
        {"reader": row.pop("reader__user__username"), "center": row.pop("reader__center__code"), **row}
        for row in qs.filter(reader__isnull=False).values("reader__user__username", "reader__center__code")
        .annotate(**counts).order_by("reader__user__username")
    ]
    by_center = [
        {"center": row.pop("case__center__code"), **row}
        for row in qs.values("case__center__code").annotate(**counts).order_by("case__center__code")
    ]
    return {"reads_by_reader": by_reader, "reads_by_center": by_center}


def reading_progress(trial: Trial) -> dict:
    counts = Read.objects.filter(case__trial=trial).aggregate(
        reads_total=Count("id"),
        reads_done=Count("id", filter=Q(status=Read.Status.DONE)),
        reads_in_progress=Count("id", filter=Q(status=Read.Status.IN_PROGRESS)),
        reads_unassigned=Count("id", filter=Q(reader__isnull=True)),
    )
    return {**counts, **reads_breakdown(trial)}


def progress_receiver(sender, *, trial: Trial, **kwargs) -> dict:
    """trial.signals.progress_requested: the reading counts for the trial's progress page and API."""
    return reading_progress(trial)


# -- images -------------------------------------------------------------------------------------------------
def reader_sees_case_images(user, case: Case) -> bool:
    """Image access rule registered with imaging (reading/apps.py): the reader assigned a read of the case."""
    return user.pk is not None and _READER_OF_CASE(case_id=case.pk, user_id=user.pk)


# Every image request of a reader asks it (core.compiled; issue 19).
_READER_OF_CASE = CompiledQuery(
    lambda *, case_id, user_id: Read.objects.filter(case_id=case_id, reader__user_id=user_id,
                                                    reader__role=Role.READER),
    kind="exists", params={"case_id": int, "user_id": int})


def reader_sees_library_images(user, case: Case) -> bool:
    """Image access rule (reading/apps.py): a reference-library case's images, for the trial's AI-arm readers
    while the trial shows similar cases (issue 21 item 2). Library cases are never enrolled, so never read."""
    trial = case.trial
    return case.library and trial.similar_cases_k > 0 and Read.objects.filter(
        case__trial=trial, reader__user=user, reader__role=Role.READER, arm__is_ai=True).exists()


# -- availability rules (the worklist and open_read both use these) ------------------------------------------
def _ai_ready_q() -> Q:
    """An AI-arm read is available once its draft is ready (model latency never counts as reading time); a read
    that already holds the draft it showed stays available."""
    ready = Draft.objects.filter(
        case=OuterRef("case"), model_version=OuterRef("arm__model_assignment__model_version"), status=Draft.Status.READY
    )
    return Q(arm__is_ai=False) | Q(draft__isnull=False) | Q(Exists(ready))


def washout_cutoff(trial: Trial, now=None) -> datetime:
    """Crossover: a later read of a case waits until the reader's earlier read of it is submitted and the trial's
    washout period has passed since: submitted no later than this."""
    return (now or timezone.now()) - timedelta(days=trial.washout_days)


def _washout_q(trial: Trial, now) -> Q:
    return _washout_by(washout_cutoff(trial, now))


def _washout_by(cutoff: datetime) -> Q:
    return Q(after_read__isnull=True) | Q(after_read__submitted_at__isnull=False, after_read__submitted_at__lte=cutoff)


def available_reads(qs: QuerySet[Read], trial: Trial, now=None) -> QuerySet[Read]:
    return _available_by(qs, washout_cutoff(trial, now))


def _available_by(qs: QuerySet[Read], cutoff: datetime) -> QuerySet[Read]:
    return qs.filter(_ai_ready_q()).filter(_washout_by(cutoff))


# The read page's small selects, compiled once per process (core.compiled; issue 19: the read page's CPU).
_IS_AVAILABLE = CompiledQuery(
    lambda *, read_id, cutoff: _available_by(Read.objects.filter(pk=read_id), cutoff),
    kind="exists", params={"read_id": int, "cutoff": datetime})


def is_available(read: Read, now=None) -> bool:
    return _IS_AVAILABLE(read_id=read.pk, cutoff=washout_cutoff(read.case.trial, now))


def unavailable_reason(read: Read, now=None) -> str:
    """Why a read is not (yet) on the worklist, in words for the reader; empty when it is available."""
    now = now or timezone.now()
    trial = read.case.trial
    qs = Read.objects.filter(pk=read.pk)
    if is_available(read, now):  # the common case, in one query (issue 19: the read page's CPU)
        return ""
    if not qs.filter(_washout_q(trial, now)).exists():
        return "This read opens after the washout period that follows your earlier read of this case."
    if not qs.filter(_ai_ready_q()).exists():
        return "This read is not ready yet. It appears on your worklist as soon as it is."
    return ""


# -- the reader's side --------------------------------------------------------------------------------------
def reader_membership(user, trial: Trial) -> Membership:
    m = Membership.objects.filter(user=user, trial=trial, role=Role.READER).select_related("center", "arm").first()
    if m is None:
        raise PermissionDenied("You are not a reader in this trial.")
    return m


def worklist_for(user, trial: Trial, now=None) -> QuerySet[Read]:
    """The reader's reads in their shuffled order (order_key): every read of theirs that is available now
    (AI-arm reads once the draft is ready; crossover second reads once the washout has passed), done ones
    included so the reader sees their progress."""
    return _worklist_of(reader_membership(user, trial), trial, now)


def _worklist_of(m: Membership, trial: Trial, now=None) -> QuerySet[Read]:
    qs = Read.objects.filter(reader=m, case__trial=trial).select_related("case", "arm")
    return available_reads(qs, trial, now).order_by("order_key", "pk")


WORKLIST_PAGE_SIZE = 50


def _next_order(available: QuerySet[Read]) -> QuerySet[Read]:
    """The reads in progress first in the reader's order, then those to do."""
    in_progress_first = SqlCase(When(status=Read.Status.IN_PROGRESS, then=Value(0)), default=Value(1))
    return (available.filter(status__in=[Read.Status.IN_PROGRESS, Read.Status.TODO])
            .order_by(in_progress_first, "order_key", "pk"))


def _next_of(available: QuerySet[Read]) -> Read | None:
    """The first read in progress in the reader's order, else the first to do: one query (issue 19.2)."""
    return _next_order(available).first()


def next_read_for(user, trial: Trial, now=None) -> Read | None:
    """The read the "next" key opens: the one in progress, else the next to do in the reader's order."""
    return _next_of(worklist_for(user, trial, now))


def next_read_id_for(user, trial: Trial, now=None) -> str | None:
    """The public id of :func:`next_read_for`'s read, in one compiled query in the common case (issue 19: the
    "next" link of every read); a user who is not a reader of the trial is refused as there (403)."""
    public_id = _NEXT_READ_ID(user_id=user.pk, trial_id=trial.pk, cutoff=washout_cutoff(trial, now))
    if public_id is not None:
        return public_id
    nxt = next_read_for(user, trial, now)  # none waiting, or not a reader: the ORM's answer and refusal
    return nxt.public_id if nxt is not None else None


def _next_read_id_query(*, user_id: int, trial_id: int, cutoff: datetime) -> QuerySet:
    mine = Read.objects.filter(reader__user_id=user_id, reader__role=Role.READER, reader__trial_id=trial_id,
                               case__trial_id=trial_id)
    return _next_order(_available_by(mine, cutoff)).values_list("public_id")[:1]


_NEXT_READ_ID = CompiledQuery(_next_read_id_query, kind="first",
                              params={"user_id": int, "trial_id": int, "cutoff": datetime})


WAITING_SHOWN = 20


def waiting_reads(user, trial: Trial, now=None, limit: int = WAITING_SHOWN) -> list[dict]:
    """The reader's reads that are not on the worklist yet, first ``limit`` in their order, each with why and,
    for a crossover read in its washout, from when: so a reader can plan, not only see a count."""
    return _waiting_of(reader_membership(user, trial), trial, now, limit)


def _waiting_of(m: Membership, trial: Trial, now=None, limit: int = WAITING_SHOWN) -> list[dict]:
    now = now or timezone.now()
    mine = Read.objects.filter(reader=m, case__trial=trial)
    held = (mine.exclude(pk__in=available_reads(mine, trial, now).values("pk"))
            .select_related("case", "arm", "after_read").order_by("order_key", "pk")[:limit])
    out = []
    for r in held:
        available_from = None
        if r.after_read_id and r.after_read.submitted_at is None:
            reason = "After your first read of this case and the washout period"
        elif r.after_read_id and r.after_read.submitted_at + timedelta(days=trial.washout_days) > now:
            available_from = r.after_read.submitted_at + timedelta(days=trial.washout_days)
            reason = "Washout period after your first read of this case"
        else:
            reason = "Waiting for the AI draft"
        out.append({"case": r.case.code, "arm": r.arm.name, "reason": reason, "available_from": available_from})
    return out


def worklist_summary(user, trial: Trial, now=None, page=None) -> dict:
    """Counts, one page of the list (``page``: a page number, default the first), and the next read (an
    in-progress one first, then the next to do in order). Counted and picked in the database: a reader of a large
    trial has thousands of reads."""
    m = reader_membership(user, trial)
    available = _worklist_of(m, trial, now)
    by_status = dict(available.order_by().values_list("status").annotate(n=Count("pk")))
    counts = {s: by_status.get(s, 0) for s in Read.Status.values}
    total_assigned = Read.objects.filter(reader=m, case__trial=trial).count()
    nxt = _next_of(available)
    paginator = Paginator(available, WORKLIST_PAGE_SIZE)
    paginator.count = sum(counts.values())  # counted above, by status: no second COUNT (a cached_property)
    reads = paginator.get_page(page)
    waiting = total_assigned - sum(counts.values())
    return {
        "membership": m,
        "reads": reads,
        "waiting_reads": _waiting_of(m, trial, now) if waiting else [],
        "counts": {
            "todo": counts[Read.Status.TODO],
            "in_progress": counts[Read.Status.IN_PROGRESS],
            "done": counts[Read.Status.DONE],
            "waiting": waiting,
            "total": total_assigned,
        },
        "next": nxt,
    }


def read_for_reader(user, public_id: str, trial: Trial | None = None) -> Read:
    """The read with this opaque id, if it is the user's own. Anything else is the same 404, an unknown id, another
    trial's read and another reader's read alike: a probe learns nothing, not even that the id exists (docs/NOTES.md,
    ninth session, helper attack)."""
    read = (
        Read.objects.select_related("case", "case__trial", "case__center", "arm",
                                    "arm__model_assignment__model_version", "reader", "reader__user", "draft")
        .filter(public_id=public_id, reader__user_id=user.pk, reader__role=Role.READER)  # ownership in the WHERE:
        .first()  # another's read takes the unknown id's path, row for row (tests/security/test_probe_parity.py)
    )
    if read is None or (trial is not None and read.case.trial_id != trial.pk):
        raise Http404("No such read.")
    return read


def check_own_read(user, public_id: str, trial: Trial | None = None) -> int:
    """read_for_reader's answer (404 for anything but the user's own read) in one compiled query, without loading
    the read, which the service then locks and loads once. Returns the read's trial id."""
    trial_id = _READ_OWNER(public_id=public_id, user_id=user.pk)
    if trial_id is None or (trial is not None and trial_id != trial.pk):
        raise Http404("No such read.")
    return trial_id


def own_read_trial(user, public_id: str) -> Trial:
    """The trial of the user's own read, to check a submission against (its findings): :func:`check_own_read`."""
    return Trial.objects.get(pk=check_own_read(user, public_id))


_READ_OWNER = CompiledQuery(
    lambda *, public_id, user_id: Read.objects.filter(public_id=public_id, reader__user_id=user_id,
                                                      reader__role=Role.READER)
    .values_list("case__trial_id", flat=True)[:1],
    kind="first", params={"public_id": str, "user_id": int})


def read_for_amendment(user, public_id: str, trial: Trial | None = None) -> Read:
    """A submitted or unsubmitted read that the user may amend: its reader, or a coordinator of its trial (issue 18
    item 2). Unknown ids (or another trial's, when ``trial`` is given) and other people's reads are 404 (a probe
    learns nothing); a coordinator who also reads or rates is refused another reader's read (403). The service
    checks the rest (submitted, not locked) under a lock."""
    # Whether the user coordinates the read's trial comes with the read, so another person's read and an unknown id
    # cost the same one query (a reader's probe: tests/security/test_probe_parity.py).
    coordinates = Membership.objects.filter(user_id=user.pk, trial_id=OuterRef("case__trial_id"),
                                            role=Role.COORDINATOR)
    read = (Read.objects.select_related("case", "case__trial", "reader", "arm")
            .annotate(by_coordinator=Exists(coordinates)).filter(public_id=public_id).first())
    if read is None or (trial is not None and read.case.trial_id != trial.pk):
        raise Http404("No such read.")
    own = read.reader is not None and read.reader.user_id == user.pk and read.reader.role == Role.READER
    if not own and not read.by_coordinator:
        raise Http404("No such read.")
    if not own and is_blinded_participant(user, read.case.trial):
        # A coordinator who also reads or rates (a membership written around the services): another reader's
        # report, its reader and times would let them match the A/B reports they rate, or the reports of cases
        # they read, to readers and arms (docs/design.md section 5, one person one side). Their own read only.
        raise PermissionDenied(BLINDED_MESSAGE)
    return read


def shown_draft(read: Read):
    """The draft an AI-arm read shows: the one stored at first open, else the ready one. Never for other arms."""
    if not read.arm.is_ai:
        return None
    if read.draft_id:
        return read.draft

    return ready_draft(read.case, arm_model_version(read.arm))


def images_of(case: Case) -> list:
    return list(case.images.order_by("created_at", "pk"))


def next_display_url(read: Read, now=None) -> str | None:
    """The display image of the reader's next read after this one (the first open one in their order), for the
    read page to prefetch; one query whatever the worklist's length. Only an image URL: the same for every arm
    and already the reader's to see, so it tells nothing about the next read's arm."""
    trial = read.case.trial
    public_id = _NEXT_DISPLAY(reader_id=read.reader_id, trial_id=trial.pk, read_id=read.pk,
                              cutoff=washout_cutoff(trial, now))
    return reverse("imaging:image-display", args=[public_id]) if public_id else None


def _next_display_query(*, reader_id: int, trial_id: int, read_id: int, cutoff: datetime) -> QuerySet:
    upcoming = _available_by(
        Read.objects.filter(reader_id=reader_id, case__trial_id=trial_id,
                            status__in=[Read.Status.TODO, Read.Status.IN_PROGRESS]).exclude(pk=read_id),
        cutoff).order_by("order_key", "pk")
    return (Image.objects.filter(case_id=Subquery(upcoming.values("case_id")[:1]))
            .order_by("created_at", "pk").values_list("public_id", flat=True)[:1])


_NEXT_DISPLAY = CompiledQuery(_next_display_query, kind="first",
                              params={"reader_id": int, "trial_id": int, "read_id": int, "cutoff": datetime})


_PATIENT = CompiledQuery(
    lambda *, case_id: Image.objects.filter(case_id=case_id).exclude(patient_age="", patient_sex="")
    .order_by("created_at", "pk").values_list("patient_age", "patient_sex")[:1],
    kind="row", params={"case_id": int})
AGE_UNITS = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}
SEX_WORDS = {"F": "Female", "M": "Male", "O": "Other"}


def clinical_context(case: Case) -> dict:
    """What the read page shows about the patient when the trial provides it: the case's clinical indication
    (the reference CSV's column) and the age and sex its de-identified images kept (only under the trial's Retain
    Patient Characteristics option). Never an identifier. Empty values are left out."""
    row = _PATIENT(case_id=case.pk)
    image = {"patient_age": row[0], "patient_sex": row[1]} if row else {}
    age = image.get("patient_age") or ""
    out = {}
    if case.clinical_indication:
        out["indication"] = case.clinical_indication
    if age:
        out["age"] = f"{int(age[:3])} {AGE_UNITS[age[3]]}"
    if image.get("patient_sex"):
        out["sex"] = SEX_WORDS[image["patient_sex"]]
    return out


# -- what the reader's page and API carry -------------------------------------------------------------------
def _iso(value):
    return value.isoformat() if value else None


def read_payload(read: Read) -> dict:
    """The read as the reader's page and API see it. Blinding: only an AI-arm read carries the key "draft" (the
    shown draft's text and its probabilities for the trial's findings) and the draft-change measures; every other
    arm's payload has no draft field at all, whatever drafts exist for the case."""
    trial = read.case.trial
    payload = {
        "public_id": read.public_id,
        "trial": trial.code,
        "case": read.case.code,
        "arm": {"code": read.arm.code, "name": read.arm.name, "is_ai": read.arm.is_ai},
        "status": read.status,
        "findings": [{"code": f["code"], "label": f["label"]} for f in trial.findings],
        "report": {
            "findings_text": read.findings_text,
            "impression_text": read.impression_text,
            "finding_marks": read.finding_marks or {},
        },
        "opened_at": _iso(read.opened_at),
        "submitted_at": _iso(read.submitted_at),
        "autosaved_at": _iso(read.autosaved_at),
        "active_seconds": round(read.active_seconds or 0.0, 1),
        "wall_seconds": read.wall_seconds,
        "images": image_entries(read.case),
        "urls": {
            "page": reverse("reading:read", args=[trial.code, read.public_id]),
            "worklist": reverse("reading:worklist", args=[trial.code]),
            "open": reverse("reading-api:open", args=[read.public_id]),
            "heartbeat": reverse("reading-api:heartbeat", args=[read.public_id]),
            "autosave": reverse("reading-api:autosave", args=[read.public_id]),
            "submit": reverse("reading-api:submit", args=[read.public_id]),
        },
    }
    if read.arm.is_ai:
        draft = shown_draft(read)
        if draft is not None:
            payload["draft"] = assist_data(read, draft)
            if read.is_submitted:
                payload["draft_edit_distance"] = read.draft_edit_distance
                payload["flipped_findings"] = list(read.flipped_findings or [])
    return payload


BOX_KEYS = ("finding", "x0", "y0", "x1", "y1", "label", "reasoning", "image")
BOX_DECISIONS = ("accepted", "rejected")


def box_id(box: dict, index: int) -> str:
    """A box's id within its draft: the box's own ``id`` when a producer gave one, else its place in
    ``Draft.boxes`` (a ready draft's boxes never change: inference.runner stores them once)."""
    return str(box.get("id") or f"b{index}")


def shown_boxes(read: Read, draft) -> list[dict]:
    """The AI boxes a read shows (what the reader may accept or reject): the draft's boxes of the trial's findings
    (or of none), each with its id; none for a withheld draft, an unassisted read or no draft."""
    if draft is None or draft.is_withheld or not read.arm.is_ai:
        return []
    codes = (*read.case.trial.finding_codes, "")
    return [{"id": box_id(b, i), **_box(b)}
            for i, b in enumerate(draft.boxes or []) if isinstance(b, dict) and b.get("finding") in codes]


def _box(b: dict) -> dict:
    """A draft's box for the viewer; "source": "cam" for the expert's class-activation-map boxes
    (inference/backends/cam.py), no such key for boxes parsed from a grounded report's text."""
    return {**{k: b.get(k) for k in BOX_KEYS}, **({"source": b["source"]} if b.get("source") else {})}


def assist_data(read: Read, draft) -> dict:
    """The AI arm's draft as shown: text, and a probability per trial finding (rounded for display), with the
    out-of-distribution warning when the draft is marked or withheld (a withheld draft shows no text and no
    probabilities: inference/ood.py)."""
    probs = {} if draft.is_withheld else (draft.probabilities or {})
    calibrated = {} if draft.is_withheld else (draft.calibrated_probabilities or {})
    codes = read.case.trial.finding_codes
    return {
        "findings_text": "" if draft.is_withheld else draft.findings_text,
        "impression_text": "" if draft.is_withheld else draft.impression_text,
        "probabilities": {c: round(float(probs[c]), 4) for c in codes if c in probs},
        # After the expert model's calibration, where one was applied when the draft was made (docs/calibration.md):
        # what the reader is shown; "calibration" says on how many reference cases it was fitted.
        "calibrated_probabilities": {c: round(float(calibrated[c]), 4) for c in codes if c in calibrated},
        "calibration": calibration_label(draft, read.case.trial) if calibrated else None,
        "source": draft.model_version.display_label,
        # Grounded findings (inference/backends/grounding.py): pixels of the image named by "image"; for the viewer.
        "boxes": shown_boxes(read, draft),
        # the reader's accept/reject per box id (issue 21 item 1), as autosaved
        "box_reviews": {} if draft.is_withheld else dict(read.box_reviews or {}),
        # what the box pixels are of: the draft's first input image as stored (inference/backends/grounding.py)
        "boxes_image_size": None if draft.is_withheld else (draft.parameters or {}).get("boxes_image_size"),
        "ood": {"action": draft.ood_action, "reasons": list(draft.ood_reasons or []), "warning": warning_text(draft)},
        # the trial's reference library cases most like this one (issue 21 item 2; empty unless the trial shows them)
        "similar_cases": similar_cases_for(read, draft),
    }


def similar_cases_for(read: Read, draft) -> list[dict]:
    """The similar cases an AI-arm read shows (issue 21 item 2): the draft's neighbours in the trial's reference
    library (found by the inference worker, inference/similar.py), best first, each with its similarity, reference
    report and images. None when the trial shows none, for a withheld draft, or outside the AI arm. Only cases that
    are still library cases (never enrolled) are shown; no case code, no arm."""
    trial = read.case.trial
    if draft is None or draft.is_withheld or not read.arm.is_ai or not trial.similar_cases_k:
        return []
    near = [n for n in (draft.similar_cases or []) if isinstance(n, dict) and "case_id" in n][:trial.similar_cases_k]
    cases = {c.pk: c for c in library_cases(trial).filter(pk__in=[n["case_id"] for n in near])
             .prefetch_related("images")}
    out = []
    for n in near:
        c = cases.get(n["case_id"])
        if c is None:
            continue
        images = [{"id": im.public_id, "display_url": reverse("imaging:image-display", args=[im.public_id])}
                  for im in sorted(c.images.all(), key=lambda im: (im.created_at, im.pk))]
        out.append({"rank": len(out) + 1, "score": round(float(n.get("score", 0.0)), 3),
                    "report": c.reference_report, "images": images})
    return out


def calibration_label(draft, trial: Trial) -> dict:
    """What the reader is told of the calibration behind the shown percentages (the draft's record of it)."""
    record = (draft.parameters or {}).get("calibration") or {}
    n = int(record.get("n_cases") or 0)
    own = record.get("trial") == trial.code
    where = "trial cases" if own else "reference cases of an earlier trial"
    return {"n_cases": n, "method": record.get("method") or "", "same_trial": own,
            "label": f"calibrated on {n} {where}"}


_ID_SLOT = "0idslot0"
_URL_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+\Z")


def id_urls(name: str, *args) -> Callable[[str], str]:
    """``reverse(name, args=[*args, public_id])`` for many ids: reversed once, each id put in the slot (a worklist
    page makes 100 URLs; reverse() is a tenth of the request's CPU, issue 19.2). Our opaque ids are URL-safe
    (secrets.token_urlsafe) and need no quoting; any other id goes through reverse()."""
    head, _, tail = reverse(name, args=[*args, _ID_SLOT]).rpartition(_ID_SLOT)

    def url(public_id: str) -> str:
        return head + public_id + tail if _URL_SAFE_ID.match(public_id) else reverse(name, args=[*args, public_id])

    return url


def worklist_payload(user, trial: Trial, page=None) -> dict:
    s = worklist_summary(user, trial, page=page)
    reads = s["reads"]
    page_url, api_url = id_urls("reading:read", trial.code), id_urls("reading-api:detail")
    return {
        "trial": trial.code,
        "counts": s["counts"],
        "next": s["next"].public_id if s["next"] else None,
        "page": reads.number,
        "pages": reads.paginator.num_pages,
        "reads": [
            {
                "public_id": r.public_id,
                "position": reads.start_index() + i,
                "case": r.case.code,
                "arm": r.arm.name,
                "status": r.status,
                "url": page_url(r.public_id),
                "api_url": api_url(r.public_id),
            }
            for i, r in enumerate(reads)
        ],
        "waiting": [{**w, "available_from": _iso(w["available_from"])} for w in s["waiting_reads"]],
    }


# -- amendments on the reader's page (issue 18) ---------------------------------------------------------------
AMEND_TEXT_FIELDS = (("findings_text", "Findings"), ("impression_text", "Impression"))


def current_report(read: Read) -> dict:
    """The read's latest version: the last amendment's report, else the submission."""
    latest = read.amendments.order_by("-number").first()
    if latest:
        return dict(latest.amended)
    return {"findings_text": read.findings_text, "impression_text": read.impression_text,
            "finding_marks": read.finding_marks or {}}


def _mark_text(mark: dict | None) -> str:
    mark = mark or {}
    present = {True: "present", False: "absent"}.get(mark.get("present"), "unmarked")
    return f"{present}, confidence {mark['confidence']}" if mark.get("confidence") else present


def report_changes(trial: Trial, before: dict, after: dict) -> list[dict]:
    """What an amendment changed, field by field, in words: [{field, before, after}]."""
    changes = [{"field": label, "before": before.get(key, ""), "after": after.get(key, "")}
               for key, label in AMEND_TEXT_FIELDS if before.get(key, "") != after.get(key, "")]
    marks_before, marks_after = before.get("finding_marks") or {}, after.get("finding_marks") or {}
    for f in trial.findings:
        old, new = marks_before.get(f["code"]), marks_after.get(f["code"])
        if (old or {}) != (new or {}):
            changes.append({"field": f["label"], "before": _mark_text(old), "after": _mark_text(new)})
    return changes


def amendment_history(read: Read) -> list[dict]:
    """The read's amendments, oldest first, each with who, when, in which role, why and what changed."""
    trial = read.case.trial
    return [
        {"number": a.number, "at": a.created_at, "by": a.amended_by.get_username(), "as": a.amended_as,
         "reason": a.reason, "changes": report_changes(trial, a.previous, a.amended)}
        for a in read.amendments.select_related("amended_by").order_by("number")
    ]


def amend_rows(trial: Trial, report: dict) -> list[dict]:
    """The finding rows of the amendment form, filled from a report."""
    marks = report.get("finding_marks") or {}
    return [{"code": f["code"], "label": f["label"], "present": (marks.get(f["code"]) or {}).get("present"),
             "confidence": (marks.get(f["code"]) or {}).get("confidence")} for f in trial.findings]
