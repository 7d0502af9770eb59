"""Reads for blinded expert rating. Everything an expert's page or API receives is built here, from
`worklist_payload` and `task_payload`, so the blinding rules live in one place (docs/design.md section 5):
no arm, model, reader, draft, timestamp, or id that sorts by arm or creation order."""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from datetime import timedelta

from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from core.compiled import CompiledQuery
from core.keyed import keyed_hex
from imaging.selectors import image_entries
from inference.backends.text import remove_redactions
from inference.models import Draft
from inference.selectors import arena_is_set, arena_model_versions
from reading.models import Read
from trial.blinding import is_blinded_participant, require_not_blinded
from trial.models import Case, Membership, Trial
from trial.permissions import Role, has_role, membership_of, require_role

from .models import ArenaTask, Rating
from .services import ARENA_ANSWER_FIELDS, ARENA_EXCLUSIONS, arena_answer_of, sort_arena_drafts

# The 5-point quality scale, anchors written out on the page and in the API.
QUALITY_SCALE = [
    {"score": 1, "label": "Unacceptable",
     "description": "Major errors or omissions that could harm the patient; the report must be rewritten."},
    {"score": 2, "label": "Poor",
     "description": "Significant errors or omissions; needs substantial revision before it could be signed."},
    {"score": 3, "label": "Acceptable",
     "description": "Minor errors or omissions without clinical consequence; usable after some revision."},
    {"score": 4, "label": "Good",
     "description": "Accurate and complete; only minor wording or style changes needed."},
    {"score": 5, "label": "Excellent",
     "description": "Accurate, complete and clearly written; would sign as is."},
]
GUESS_QUESTION = "Which report do you think was written with AI assistance?"
GUESS_CHOICES = [
    {"value": "A", "label": "Report A"},
    {"value": "B", "label": "Report B"},
    {"value": "dont_know", "label": "Don't know"},
]
# Single-report tasks (case-randomised): the same question about the one report.
GUESS_QUESTION_SINGLE = "Do you think this report was written with AI assistance?"
GUESS_CHOICES_SINGLE = [
    {"value": "A", "label": "Yes"},
    {"value": "not_a", "label": "No"},
    {"value": "dont_know", "label": "Don't know"},
]
PREFERENCE_CHOICES = [
    {"value": "A", "label": "Report A"},
    {"value": "B", "label": "Report B"},
    {"value": "none", "label": "No preference"},
]
STATUS_LABELS = {"todo": "To do", "in_progress": "In progress", "done": "Done"}


# -- text normalisation -------------------------------------------------------------------------------------
# Words kept upper-case after sentence-casing (same rule for every report, so casing edits leave no trace).
ACRONYMS = {
    "ap", "pa", "ct", "mri", "icu", "ng", "og", "ett", "picc", "cvc", "ij", "svc", "ivc", "copd", "chf", "ards",
    "ecg", "ekg", "aicd", "icd", "lv", "rv", "rul", "rml", "rll", "lul", "lll", "cabg", "tb", "hiv", "covid",
    "cxr", "dx", "cr", "et",
}
ABBREVIATIONS = {"e.g.", "i.e.", "vs.", "approx.", "cf.", "no.", "dr.", "etc.", "fig.", "incl."}
# Section headers, alone on a line or before its text: "FINDINGS:", "Findings and impression -", "## Impression".
_SECTION_WORDS = (r"(?:findings?|impressions?|conclusions?|opinion|report|comparisons?|indications?|history|"
                  r"technique|clinical\s+(?:history|information|indications?|details))")
SECTION_LABEL = re.compile(
    rf"^{_SECTION_WORDS}(?:\s*(?:and|&|/)\s*{_SECTION_WORDS})?\s*(?:[:\-]\s*|$)", re.I)
MARKUP = re.compile(r"<[^<>]{1,40}>|(?<![\w*_])[*_]{1,3}(?=\S)|(?<=\S)[*_]{1,3}(?![\w*_])|^\s*#{1,6}\s*", re.M)
# "2)" inside a line with no sentence end before it: "Heart normal 2) Lungs clear".
INLINE_PAREN_NUMBER = re.compile(r"\s+\(?\d{1,2}\)\s+(?=[A-Za-z])")
# A list marker at the start of a line: bullets, dashes, numbers and letters with . or ), (1).
LINE_MARKER = re.compile(
    r"^\s*(?:[-*+>\u2022\u00b7\u2023\u25e6\u25aa\u25cf\u2013\u2014]+\s*"
    r"|\(?(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)](?=\s|[A-Za-z])\s*"
    r"|\(\d{1,3}\)\s*)"
)
# A number marker inside a line, after the start or a sentence end: "1. Heart normal. 2. Lungs clear."
INLINE_NUMBER = re.compile(r"(^|[.;:]\s+)(?:\(?\d{1,2}[.)]|\(?[a-z]\))\s+(?=[A-Za-z])")
VERTEBRA = re.compile(r"\b([tcl])(\d{1,2})\b")
TRANSLATE = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\t": " ",
    "\u2013": "-", "\u2014": "-", "\u2212": "-",
})


def _split_items(text: str) -> list[str]:
    """Lines into items: a marked line or one after a blank line starts an item; other lines continue it."""
    items: list[str] = []
    new_item = True
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            new_item = True
            continue
        line = SECTION_LABEL.sub("", line)
        marked = LINE_MARKER.match(line)
        if marked:
            line = line[marked.end():]
        if not line:
            new_item = True
            continue
        if marked or new_item or not items:
            items.append(line)
        else:
            items[-1] += " " + line
        new_item = False
    return items


def _sentences(item: str) -> list[str]:
    words = item.split(" ")
    out: list[str] = []
    current: list[str] = []
    for w in words:
        current.append(w)
        if w[-1:] in ".!?" and w.lower() not in ABBREVIATIONS and not re.fullmatch(r"\d+\.\d*", w):
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def _sentence_case(sentence: str) -> str:
    s = sentence.lower()
    s = re.sub(r"[a-z]+", lambda m: m.group(0).upper() if m.group(0) in ACRONYMS else m.group(0), s)
    s = VERTEBRA.sub(lambda m: m.group(1).upper() + m.group(2), s)
    s = re.sub(r"\bx-ray", "X-ray", s)
    return s[:1].upper() + s[1:]


def normalise_text(text: str) -> list[str]:
    """A report section as a list of sentences: markup (HTML tags, Markdown emphasis and headings) and section
    headers removed, whitespace collapsed, bullets and numbering removed, semicolons made sentence ends, public-corpus
    redaction tokens removed, sentence-cased, each ending with a full stop. Two texts that differ only in such
    formatting normalise to the same list, so the edit traces of a draft do not show."""
    text = unicodedata.normalize("NFKC", text or "").translate(TRANSLATE).replace("\r\n", "\n").replace("\r", "\n")
    text = MARKUP.sub("", text)
    sentences: list[str] = []
    for item in _split_items(text):
        item = re.sub(r"\s+", " ", item).strip()
        item = INLINE_PAREN_NUMBER.sub(". ", item)
        item = INLINE_NUMBER.sub(lambda m: m.group(1), item)
        item = re.sub(r"\s*;\s*", ". ", item)  # "a; b" and "a. b" are one style
        item = re.sub(r"\s+([,.;:!?])", r"\1", item)  # no space before punctuation
        item = re.sub(r"([,;:])(?=[A-Za-z])", r"\1 ", item)  # one space after
        item = re.sub(r"\.{2,}", ".", item)
        item = re.sub(r"\s+-\s+|\s+-(?=\s)|(?<=\s)-\s+", " - ", item)
        item = re.sub(r"\s+", " ", item).strip()
        for s in _sentences(item):
            s = remove_redactions(s).strip(" ,;:-")  # public-corpus artefacts ("XXXX") never reach an expert
            if not s or not any(ch.isalnum() for ch in s):
                continue
            if s[-1] not in ".!?":
                s += "."
            sentences.append(_sentence_case(s))
    return sentences


def task_label(rating: Rating) -> str:
    """What the expert calls a task: keyed on the task's opaque id, so it names neither the case (whose code carries
    the center) nor anything that sorts by arm, and two experts' tasks of one case have unrelated labels."""
    return "T-" + keyed_hex(rating.case.trial.secret, "rating-task-label", rating.public_id)[:8].upper()


def blinded_marks(read: Read, findings: list[dict]) -> list[dict]:
    """The reader's finding marks as the expert sees them (issue 17): one row per trial finding, in the trial's
    order (never the order the read's dict was written in, which differs when a draft pre-filled it), with
    present/absent and the reader's confidence only. What the draft pre-filled, flipped findings and anything
    else that belongs to one arm stay out."""
    marks = read.finding_marks or {}
    rows = []
    for finding in findings:
        mark = marks.get(finding["code"]) or {}
        present = mark.get("present")
        confidence = mark.get("confidence")
        rows.append({
            "code": finding["code"],
            "label": finding["label"],
            "present": present if isinstance(present, bool) else None,
            "confidence": confidence if isinstance(confidence, int) and 1 <= confidence <= 5 else None,
        })
    return rows


def blinded_report(read: Read, findings: list[dict] | None = None) -> dict:
    """The only view of a read an expert gets: its findings and impression, normalised, and its finding marks
    (present/absent and confidence, in the trial's order). Nothing else of the read (arm, reader, draft,
    pre-filled or flipped findings, times, ids) is included."""
    findings = read.case.trial.findings if findings is None else findings
    return {"findings": normalise_text(read.findings_text), "impression": normalise_text(read.impression_text),
            "marks": blinded_marks(read, findings)}


# -- who sees what ------------------------------------------------------------------------------------------
def expert_membership(user, trial: Trial) -> Membership:
    require_role(user, trial, Role.EXPERT)
    return membership_of(user, trial, Role.EXPERT)


def worklist(user, trial: Trial) -> QuerySet[Rating]:
    """The expert's own tasks, in their drawn order (a keyed hash of the opaque id: not creation or arm order)."""
    expert = expert_membership(user, trial)
    return (Rating.objects.filter(expert=expert, case__trial=trial).select_related("case__trial")
            .order_by("order_key", "public_id"))


# Every request of an expert's task: compiled once per process (core.compiled; docs/performance.md).
_OWN_TASK = CompiledQuery(
    lambda *, public_id, trial_id, expert_id: Rating.objects.filter(
        public_id=public_id, case__trial_id=trial_id, expert_id=expert_id)
    .select_related("case__trial", "read_a", "read_b", "expert").order_by("pk")[:1],
    kind="object", params={"public_id": str, "trial_id": int, "expert_id": int})


def rating_for_expert(user, trial: Trial, public_id: str) -> Rating:
    """The expert's own task; 404 for anyone else's (their existence is not revealed)."""
    expert = expert_membership(user, trial)
    rating = _OWN_TASK(public_id=public_id, trial_id=trial.pk, expert_id=expert.pk) if isinstance(
        public_id, str) else None
    if rating is None:
        raise Http404("No such rating task.")
    return rating


def rating_for_amendment(user, trial: Trial, public_id: str) -> Rating:
    """A rating the user may amend (issue 18 item 2): the expert's own task, or any task of the trial for one of its
    coordinators. Another expert's task is 404, as on the task endpoints (its existence is not revealed); anyone
    else 403. The service checks the rest (submitted, not locked) under a row lock."""
    # A coordinator who also reads or rates (a membership written around the services) gets their own tasks only,
    # as an expert (another expert's answers and A/B order are what a blinded rater must not see; docs/design.md
    # section 5, one person one side).
    if has_role(user, trial, Role.COORDINATOR) and not is_blinded_participant(user, trial):
        rating = (Rating.objects.filter(public_id=public_id, case__trial=trial)
                  .select_related("case__trial", "read_a", "read_b", "expert").first())
        if rating is None:
            raise Http404("No such rating task.")
        return rating
    return rating_for_expert(user, trial, public_id)


WORKLIST_PAGE_SIZE = 50


def worklist_progress(tasks: QuerySet[Rating]) -> dict:
    """Counted in the database: an expert of a large trial has thousands of tasks."""
    by_status = dict(tasks.order_by().values_list("status").annotate(n=Count("pk")))
    total = sum(by_status.values())
    done = by_status.get(Rating.Status.DONE, 0)
    return {
        "total": total,
        "done": done,
        "in_progress": by_status.get(Rating.Status.IN_PROGRESS, 0),
        "percent": round(100 * done / total) if total else 0,
    }


def next_task_id(user, trial: Trial) -> str | None:
    """The first task in the expert's order that is not done."""
    return (worklist(user, trial).exclude(status=Rating.Status.DONE)
            .values_list("public_id", flat=True).first())


def position_of(user, trial: Trial, rating: Rating) -> int:
    """The task's 1-based place in the expert's order."""
    before = worklist(user, trial).filter(
        Q(order_key__lt=rating.order_key) | Q(order_key=rating.order_key, public_id__lt=rating.public_id)
    )
    return before.count() + 1


def worklist_payload(user, trial: Trial, page=None) -> dict:
    """Progress and the next task over the whole worklist, and one page of it (``page``: a number, default 1)."""
    tasks = worklist(user, trial)
    page_of = Paginator(tasks, WORKLIST_PAGE_SIZE).get_page(page)
    return {
        "trial": trial.code,
        "progress": worklist_progress(tasks),
        "next": next_task_id(user, trial),
        "page": page_of.number,
        "pages": page_of.paginator.num_pages,
        "tasks": [
            {
                "id": t.public_id,
                "position": page_of.start_index() + i,
                "label": task_label(t),
                "kind": "single" if t.read_b_id is None else "pair",
                "status": t.status,
                "status_label": STATUS_LABELS[t.status],
            }
            for i, t in enumerate(page_of)
        ],
    }


def images_for(rating: Rating) -> list[dict]:
    """The case's images, by their per-image opaque id (shared by both reports); served by imaging's endpoints,
    whose access rule for experts is registered in rating/apps.py."""
    return image_entries(rating.case)


def task_payload(rating: Rating) -> dict:
    """Everything the expert's page and API show for one task."""
    single = rating.read_b_id is None
    asked = rating.case.trial.ask_blinding_guess
    question, choices = (GUESS_QUESTION_SINGLE, GUESS_CHOICES_SINGLE) if single else (GUESS_QUESTION, GUESS_CHOICES)
    findings = rating.case.trial.findings
    reports = [{"label": "A", **blinded_report(rating.read_a, findings)}]
    if not single:
        reports.append({"label": "B", **blinded_report(rating.read_b, findings)})
    return {
        "id": rating.public_id,
        "label": task_label(rating),
        "kind": "single" if single else "pair",
        "status": rating.status,
        "status_label": STATUS_LABELS[rating.status],
        "submitted": rating.status == Rating.Status.DONE,
        "reports": reports,
        "images": images_for(rating),
        "answer": {
            "preference": rating.preference or None,
            "quality_a": rating.quality_a,
            "quality_b": rating.quality_b,
            "comment": rating.comment,
            "blinding_guess": rating.blinding_guess or None,
        },
        "scale": QUALITY_SCALE,
        "preferences": [] if single else PREFERENCE_CHOICES,
        "guess": {"asked": asked, "question": question if asked else "", "choices": choices if asked else []},
    }


def rating_progress(trial: Trial) -> dict:
    """For the coordinator's progress view: ratings made and done, and the cases whose reads are complete but whose
    expert panel is short (too few eligible experts; topped up when an expert joins)."""
    progress = Rating.objects.filter(case__trial=trial).aggregate(
        ratings_total=Count("id"), ratings_done=Count("id", filter=Q(status=Rating.Status.DONE)),
    )
    # By expert (issue 17): counts only; an expert's tasks carry no arm.
    progress["ratings_by_expert"] = _by_expert(Rating.objects.filter(case__trial=trial), trial)
    progress["cases_short_of_panel"] = (
        Case.objects.filter(trial=trial, status=Case.Status.READ)
        .annotate(n=Count("ratings")).filter(n__lt=trial.expert_panel_size).count()
    )
    return progress


def _by_expert(tasks: QuerySet, trial: Trial) -> list[dict]:
    """Rating or arena tasks counted per expert by status, and those not done ``overdue_after_days`` after they were
    made (Rating and ArenaTask share the status values)."""
    overdue_before = timezone.now() - timedelta(days=trial.overdue_after_days)
    done = Rating.Status.DONE
    return [
        {"expert": row.pop("expert__user__username"), "center": row.pop("expert__center__code"), **row}
        for row in tasks.values("expert__user__username", "expert__center__code")
        .annotate(done=Count("id", filter=Q(status=done)),
                  in_progress=Count("id", filter=Q(status=Rating.Status.IN_PROGRESS)),
                  todo=Count("id", filter=Q(status=Rating.Status.TODO)),
                  overdue=Count("id", filter=~Q(status=done) & Q(created_at__lt=overdue_before)))
        .order_by("expert__user__username")
    ]


def arena_trial_progress(trial: Trial) -> dict:
    """For the coordinator's progress page and API: the arena's tasks, submitted, in progress, and per expert. Counts
    only, as for ratings: nothing per model version (docs/ai-evaluation.md, standalone arena)."""
    tasks = ArenaTask.objects.filter(case__trial=trial)
    progress = tasks.aggregate(
        arena_total=Count("id"), arena_done=Count("id", filter=Q(status=ArenaTask.Status.DONE)),
        arena_in_progress=Count("id", filter=Q(status=ArenaTask.Status.IN_PROGRESS)))
    progress["arena_by_expert"] = _by_expert(tasks, trial) if progress["arena_total"] else []
    return progress


def progress_receiver(sender, *, trial: Trial, **kwargs) -> dict:
    """trial.signals.progress_requested: the rating and arena counts for the trial's progress page and API."""
    return {**rating_progress(trial), **arena_trial_progress(trial)}


def expert_sees_case_images(user, case) -> bool:
    """Image access rule registered with imaging (rating/apps.py): experts with a rating task for the case, or an
    arena task of it that is available to them (the blinding rule of :func:`available_arena_tasks`)."""
    if Rating.objects.filter(case=case, expert__user=user, expert__role=Role.EXPERT).exists():
        return True
    return available_arena_tasks(ArenaTask.objects.filter(case=case, expert__user=user,
                                                          expert__role=Role.EXPERT)).exists()


# -- amendments on the expert's page (issue 18); everything in the task's A/B terms, nothing names an arm ----------
AMEND_FIELDS = ("preference", "quality_a", "quality_b", "comment", "blinding_guess")


def current_rating_answer(rating: Rating) -> dict:
    """The latest version of the answer: the last amendment's, else the submission's."""
    latest = rating.amendments.order_by("-number").first()
    if latest:
        return dict(latest.amended)
    return {k: getattr(rating, k) for k in AMEND_FIELDS}


def _answer_words(field: str, value, single: bool) -> str:
    if value in (None, ""):
        return "–"
    if field == "preference":
        return {p["value"]: p["label"] for p in PREFERENCE_CHOICES}.get(value, str(value))
    if field in ("quality_a", "quality_b"):
        return {s["score"]: f"{s['score']} · {s['label']}" for s in QUALITY_SCALE}.get(value, str(value))
    if field == "blinding_guess":
        choices = GUESS_CHOICES_SINGLE if single else GUESS_CHOICES
        return {g["value"]: g["label"] for g in choices}.get(value, str(value))
    return str(value)


def answer_changes(rating: Rating, before: dict, after: dict) -> list[dict]:
    """What an amendment changed, in words: [{field, before, after}]."""
    single = rating.read_b_id is None
    names = {"preference": "Preference", "quality_a": "Quality of report A", "quality_b": "Quality of report B",
             "comment": "Comment", "blinding_guess": GUESS_QUESTION_SINGLE if single else GUESS_QUESTION}
    return [{"field": names[k], "before": _answer_words(k, before.get(k), single),
             "after": _answer_words(k, after.get(k), single)}
            for k in AMEND_FIELDS if before.get(k) != after.get(k)]


def rating_amendment_history(rating: Rating) -> list[dict]:
    """The rating's amendments, oldest first: who, when, in which role, why and what changed (A/B terms only)."""
    return [
        {"number": a.number, "at": a.created_at, "by": a.amended_by.get_username(), "as": a.amended_as,
         "reason": a.reason, "changes": answer_changes(rating, a.previous, a.amended)}
        for a in rating.amendments.select_related("amended_by").order_by("number")
    ]


# -- the standalone arena (issue 20 item 1; docs/ai-evaluation.md, "Standalone arena") ---------------------------
# What an expert receives of an arena task: two drafts as A and B, normalised as reports are (normalise_text), the
# case's images, the answer. No model name or version, no arm, no draft id, probability, box or timestamp.
ARENA_PREFERENCE_CHOICES = [
    {"value": "A", "label": "Draft A"},
    {"value": "B", "label": "Draft B"},
    {"value": "tie", "label": "Tie: neither is better"},
]


def available_arena_tasks(tasks: QuerySet[ArenaTask]) -> QuerySet[ArenaTask]:
    """The blinding rule: an arena task is available to its expert only if they hold no read of the case, and only
    once any rating task they hold for the same case is submitted (a case's drafts tell which of its reader reports
    was AI-assisted). rating.services._create_tasks_locked keeps the other direction: no reader-pair rating for an
    expert holding an arena task."""
    pending = Rating.objects.filter(case=OuterRef("case"), expert=OuterRef("expert")).exclude(
        status=Rating.Status.DONE)
    # Nor to a person who also reads the case (a membership written around the services' role rule): its AI
    # drafts would unblind an unassisted read still to do, or tell them which arm their own read was in.
    own_read = Read.objects.filter(case=OuterRef("case"), reader__user=OuterRef("expert__user"))
    return tasks.filter(~Exists(pending)).filter(~Exists(own_read))


def arena_worklist(user, trial: Trial) -> QuerySet[ArenaTask]:
    """The expert's available arena tasks, in their drawn order."""
    expert = expert_membership(user, trial)
    return (available_arena_tasks(ArenaTask.objects.filter(expert=expert, case__trial=trial))
            .select_related("case__trial").order_by("order_key", "public_id"))


def arena_task_for_expert(user, trial: Trial, public_id: str) -> ArenaTask:
    """The expert's own available arena task; 404 for anyone else's, and for one the blinding rule holds back (its
    existence is not revealed)."""
    task = (arena_worklist(user, trial).filter(public_id=public_id)
            .select_related("draft_a", "draft_b", "expert").first())
    if task is None:
        raise Http404("No such arena task.")
    return task


def arena_task_label(task: ArenaTask) -> str:
    """Keyed on the task's opaque id: names neither the case nor the versions."""
    return "D-" + keyed_hex(task.case.trial.secret, "arena-task-label", task.public_id)[:8].upper()


def blinded_draft(draft) -> dict:
    """A draft as the expert sees it in the arena: its findings and impression, normalised. Nothing else."""
    return {"findings": normalise_text(draft.findings_text), "impression": normalise_text(draft.impression_text)}


def arena_task_payload(task: ArenaTask) -> dict:
    """Everything the expert's arena page and API show for one task."""
    return {
        "id": task.public_id,
        "label": arena_task_label(task),
        "status": task.status,
        "status_label": STATUS_LABELS[task.status],
        "submitted": task.status == ArenaTask.Status.DONE,
        "drafts": [{"label": "A", **blinded_draft(task.draft_a)}, {"label": "B", **blinded_draft(task.draft_b)}],
        "images": image_entries(task.case),
        "answer": {"preference": task.preference or None, "quality_a": task.quality_a,
                   "quality_b": task.quality_b, "comment": task.comment},
        "scale": QUALITY_SCALE,
        "preferences": ARENA_PREFERENCE_CHOICES,
    }


def arena_progress(tasks: QuerySet[ArenaTask]) -> dict:
    by_status = dict(tasks.order_by().values_list("status").annotate(n=Count("pk")))
    total = sum(by_status.values())
    done = by_status.get(ArenaTask.Status.DONE, 0)
    return {"total": total, "done": done, "in_progress": by_status.get(ArenaTask.Status.IN_PROGRESS, 0),
            "percent": round(100 * done / total) if total else 0}


def next_arena_task_id(user, trial: Trial) -> str | None:
    return arena_worklist(user, trial).exclude(status=ArenaTask.Status.DONE).values_list("public_id", flat=True).first()


def arena_worklist_payload(user, trial: Trial, page=None) -> dict:
    tasks = arena_worklist(user, trial)
    page_of = Paginator(tasks, WORKLIST_PAGE_SIZE).get_page(page)
    return {
        "trial": trial.code,
        "progress": arena_progress(tasks),
        "next": next_arena_task_id(user, trial),
        "page": page_of.number,
        "pages": page_of.paginator.num_pages,
        "tasks": [{"id": t.public_id, "position": page_of.start_index() + i, "label": arena_task_label(t),
                   "status": t.status, "status_label": STATUS_LABELS[t.status]} for i, t in enumerate(page_of)],
    }


def arena_position_of(user, trial: Trial, task: ArenaTask) -> int:
    before = arena_worklist(user, trial).filter(
        Q(order_key__lt=task.order_key) | Q(order_key=task.order_key, public_id__lt=task.public_id))
    return before.count() + 1


def arena_summary(trial: Trial) -> dict:
    """For the coordinator (never an expert): the arena's versions and its task counts."""
    tasks = ArenaTask.objects.filter(case__trial=trial)
    return {"model_versions": [mv.name for mv in arena_model_versions(trial)], "default": not arena_is_set(trial),
            **{k: v for k, v in arena_progress(tasks).items() if k in ("total", "done", "in_progress")},
            "cases": tasks.values("case").distinct().count()}


def arena_coordinator_page(user, trial: Trial) -> dict:
    """The coordinator's arena page (issue 20 item 1): the arena's versions, the tasks drawn and submitted, per expert,
    and the drafts the arena leaves out now, by reason. Coordinators who do not also read or rate in the trial only
    (the API's rule, trial.blinding: the page names model versions). Nothing per version is counted: a judgement count
    per version before lock would unblind the coordinator's view of the comparison (docs/ai-evaluation.md)."""
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)
    versions = arena_model_versions(trial)
    tasks = ArenaTask.objects.filter(case__trial=trial)
    per_expert = (tasks.order_by().values("expert__user__username")
                  .annotate(total=Count("pk"), done=Count("pk", filter=Q(status=ArenaTask.Status.DONE)))
                  .order_by("expert__user__username"))
    cases = (Case.objects.filter(trial=trial, enrolled_at__isnull=False, library=False)
             .exclude(status=Case.Status.EXCLUDED))
    case_ids = list(cases.values_list("pk", flat=True))
    return {**arena_summary(trial), "versions": versions, "enrolled_cases": len(case_ids),
            "per_expert": [{"expert": r["expert__user__username"], "total": r["total"], "done": r["done"]}
                           for r in per_expert],
            **_arena_left_out(cases, case_ids, versions)}


def _arena_left_out(cases: QuerySet[Case], case_ids: list[int], versions: list) -> dict:
    """The drafts the arena leaves out now, by reason, over the enrolled cases (none counted before the arena has two
    versions)."""
    left_out = arena_left_out_by_reason(cases, case_ids, versions) if len(versions) >= 2 \
        else dict.fromkeys(ARENA_EXCLUSIONS, 0)
    return {"left_out": left_out, "left_out_total": sum(left_out.values())}


def arena_left_out_by_reason(cases: QuerySet[Case], case_ids: list[int], versions: list) -> dict[str, int]:
    """The drafts of ``versions`` the arena leaves out of the cases ``case_ids`` (``cases``, their queryset), by
    reason (ARENA_EXCLUSIONS): one query for all their drafts (rating.services.sort_arena_drafts sorts each case's),
    whatever the number of cases; the same counts as rating.services.arena_drafts case by case."""
    left_out = dict.fromkeys(ARENA_EXCLUSIONS, 0)
    by_case: dict[int, dict] = defaultdict(dict)
    for d in Draft.objects.filter(case__in=cases, model_version__in=versions):
        by_case[d.case_id][d.model_version_id] = d
    for case_id in case_ids:
        for reason, n in sort_arena_drafts(by_case[case_id], versions)[1].items():
            left_out[reason] += n
    return left_out


# -- amending an arena judgement (its expert only; rating.services.amend_arena_task) --------------------------------
def current_arena_answer(task: ArenaTask) -> dict:
    """The latest version of the judgement: the last amendment's, else the submission's."""
    latest = task.amendments.order_by("-number").first()
    return dict(latest.amended) if latest else arena_answer_of(task)


def _arena_words(field: str, value) -> str:
    if value in (None, ""):
        return "–"
    if field == "preference":
        return {p["value"]: p["label"] for p in ARENA_PREFERENCE_CHOICES}.get(value, str(value))
    if field in ("quality_a", "quality_b"):
        return {s["score"]: f"{s['score']} · {s['label']}" for s in QUALITY_SCALE}.get(value, str(value))
    return str(value)


def arena_amendment_history(task: ArenaTask) -> list[dict]:
    """The judgement's amendments, oldest first: who, when, why and what changed (A/B terms only, no version)."""
    names = {"preference": "Preference", "quality_a": "Quality of draft A", "quality_b": "Quality of draft B",
             "comment": "Comment"}
    return [
        {"number": a.number, "at": a.created_at, "by": a.amended_by.get_username(), "as": "expert",
         "reason": a.reason,
         "changes": [{"field": names[k], "before": _arena_words(k, a.previous.get(k)),
                      "after": _arena_words(k, a.amended.get(k))}
                     for k in ARENA_ANSWER_FIELDS if a.previous.get(k) != a.amended.get(k)]}
        for a in task.amendments.select_related("amended_by").order_by("number")
    ]
