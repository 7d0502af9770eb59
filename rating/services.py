"""Writes for blinded expert rating (issue 6, docs/design.md sections 2, 4 and 5). Each public function is one
transaction.

- `on_read_submitted(read)` is called by `reading.services.submit_read` inside its transaction; when all the
  reads a case needs are submitted it makes the case's rating tasks.
- `create_rating_tasks(case)` is idempotent: it makes (or tops up) the case's panel of experts.
- `open_rating`, `autosave_rating`, `submit_rating`: the expert's side, with the same autosave, resume and
  idempotent-submit rules as reads.

Which reports are compared:
- paired-by-case: the case's two reads (one per arm); with three or more arms, one pair of the case's reads drawn
  uniformly among all pairs from the trial's secret (fixed in advance, never adaptive), once every read of the case
  is in, and the whole panel rates that pair;
- crossover: the two reads (one per arm) of one reader of the case, drawn from the trial's secret, so the
  pair is fixed in advance and does not depend on who finished first (with three or more arms, then one pair of
  that reader's reads, drawn the same way);
- case-randomised: the case's single read, scored alone (read_b is null, no preference).

The A/B order of each task is drawn from `order_seed = HMAC(trial.secret, rating.public_id)` and stored.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from types import SimpleNamespace

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from core.compiled import CompiledQuery
from core.errors import Conflict, InvalidInput, NotAllowed, require_storable_text, storable_text
from core.keyed import keyed_hex
from inference.models import Draft, ModelVersion
from inference.selectors import arena_model_versions
from reading.models import Read
from trial import audit, signatures
from trial.blinding import is_blinded_participant
from trial.models import AuditEntry, Case, Membership, Trial
from trial.permissions import Role, has_role
from trial.services import ensure_coordinator, ensure_writable, hold_unlocked
from trial.signatures import Meaning

from .models import ArenaAmendment, ArenaTask, Rating, RatingAmendment

PREFERENCES = tuple(Rating.Preference.values)  # "A", "B", "none"
_DONT_KNOW = {"dont_know": "dont_know", "don't know": "dont_know", "dont know": "dont_know", "unknown": "dont_know"}
# Accepted answers: a pair names the report it thinks AI-assisted; a single report is AI-assisted (A) or not (not_a).
GUESSES = {"pair": {"a": "A", "b": "B", **_DONT_KNOW},
           "single": {"a": "A", "yes": "A", "not_a": "not_a", "no": "not_a", **_DONT_KNOW}}
COMMENT_MAX = 5000


# -- seeds and draws ----------------------------------------------------------------------------------------
def _hmac(trial: Trial, msg: str) -> str:
    return keyed_hex(trial.secret, msg)


def order_seed_for(trial: Trial, public_id: str) -> str:
    """The recorded seed of one task's A/B order."""
    return _hmac(trial, f"rating-order|{public_id}")


def swap_from_seed(order_seed: str) -> bool:
    """True when the canonical pair (first, second) is shown as (B, A). One fair bit of the seed."""
    return int(order_seed[:16], 16) & 1 == 1


def _worklist_key(trial: Trial, public_id: str) -> int:
    return int(_hmac(trial, f"rating-worklist|{public_id}")[:14], 16)


# -- which reads a case needs -------------------------------------------------------------------------------
def _is_submitted(read: Read) -> bool:
    return read.status == Read.Status.DONE and read.submitted_at is not None


def _canonical(reads: list[Read]) -> list[Read]:
    """Unassisted-type arm first, then by arm code: the order before the per-task draw."""
    return sorted(reads, key=lambda r: (r.arm.is_ai, r.arm.code, r.pk))


def _drawn_pair(trial: Trial, key: str, reads: list[Read]) -> list[Read]:
    """One pair of ``reads`` (three or more, one per arm), uniform over all k(k-1)/2 pairs, drawn from the trial's
    secret and ``key``: fixed in advance, the same whoever asks, and independent of any rating (not adaptive). The
    pair comes back in canonical order; the A/B sides are drawn per task as for two arms."""
    pairs = list(combinations(_canonical(reads), 2))
    return list(pairs[int(_hmac(trial, f"arm-pair|{key}")[:14], 16) % len(pairs)])


def pair_reads(case: Case) -> list[Read] | None:
    """The reads to rate for a case, in canonical order; None when the design gives no rateable set (yet: with
    three or more arms the pair is given once every read of the case is submitted)."""
    trial = case.trial
    reads = _CASE_READS(case_id=case.pk)
    if trial.design == Trial.Design.CASE_RANDOMISED:
        return reads[:1] if len(reads) == 1 else None
    if trial.design == Trial.Design.PAIRED_BY_CASE:
        by_arm = {r.arm_id: r for r in reads}
        if len(reads) < 2 or len(by_arm) != len(reads):
            return None
        if len(reads) == 2:
            return _canonical(reads)
        if not all(_is_submitted(r) for r in reads):
            return None
        return _drawn_pair(trial, f"case|{case.pk}", reads)
    # crossover: one reader's pair, drawn in advance among the readers who have one read in each of two arms
    per_reader: dict[int, dict[int, Read]] = {}
    for r in reads:
        if r.reader_id is not None:
            per_reader.setdefault(r.reader_id, {})[r.arm_id] = r
    candidates = sorted(rid for rid, arms in per_reader.items() if len(arms) >= 2)
    if not candidates:
        return None
    pick = candidates[int(_hmac(trial, f"crossover-pair|{case.pk}")[:14], 16) % len(candidates)]
    mine = list(per_reader[pick].values())
    if len(mine) == 2:
        return _canonical(mine)
    if not all(_is_submitted(r) for r in mine):
        return None
    return _drawn_pair(trial, f"crossover|{case.pk}", mine)


# -- task creation ------------------------------------------------------------------------------------------
@transaction.atomic(savepoint=False)  # inside submit_read's transaction: its failure fails the submit
def on_read_submitted(read: Read) -> list[Rating]:
    """Called after a read is submitted (inside submit_read's transaction). Locks the case row so that two
    reads of one case submitted at the same moment cannot both miss the other: the second waits, then sees
    the first committed."""
    # of=self: lock the case row only. A plain select_for_update with select_related would also lock the trial
    # row FOR UPDATE, which blocks every insert that references the trial (audit entries) until this commits.
    case = _LOCKED_CASE(pk=read.case_id)
    if case is None:
        raise Case.DoesNotExist("Case matching query does not exist.")
    return _create_tasks_locked(case)


# Every submit locks its case and reads the case's reads: compiled once per process (core.compiled).
_LOCKED_CASE = CompiledQuery(lambda *, pk: Case.objects.select_for_update(of=("self",)).filter(pk=pk)
                             .select_related("trial", "center").order_by("pk")[:1], kind="object", params={"pk": int})
_CASE_READS = CompiledQuery(lambda *, case_id: Read.objects.filter(case_id=case_id).select_related("arm")
                            .order_by("pk"), kind="objects", params={"case_id": int})


@transaction.atomic
def create_rating_tasks(case: Case) -> list[Rating]:
    """Idempotent: makes the case's rating tasks once all its reads are in, or tops up a short panel (an expert
    added later). Returns the tasks made by this call."""
    case = Case.objects.select_for_update(of=("self",)).select_related("trial", "center").get(pk=case.pk)
    return _create_tasks_locked(case)


def top_up_panels(trial: Trial) -> list[Rating]:
    """After an expert joins: cases whose reads are complete but whose panel came out short (too few eligible
    experts at the time) get their missing tasks. Locks the short cases first, in id order, and only then the
    experts and the audit chain, the same order a submit takes (its one case, experts, chain): no deadlock."""
    short = list(
        Case.objects.filter(trial=trial, status=Case.Status.READ)
        .annotate(n=Count("ratings")).filter(n__lt=trial.expert_panel_size)
        .order_by("pk").values_list("pk", flat=True)
    )
    if not short:
        return []
    cases = list(Case.objects.select_for_update(of=("self",)).select_related("trial", "center")
                 .filter(pk__in=short).order_by("pk"))
    made: list[Rating] = []
    for case in cases:
        made += _create_tasks_locked(case)
    return made


def _create_tasks_locked(case: Case) -> list[Rating]:
    trial = case.trial
    if case.status == Case.Status.EXCLUDED or trial.is_locked:
        return []
    reads = pair_reads(case)
    if not reads or not all(_is_submitted(r) for r in reads):
        return []
    # Serialise panel assignment across cases of the trial so workload balancing sees every earlier task.
    # A person who also reads in the trial (a second role, written around the services) and holds a read of the
    # case would find their own report as A or B, and so the other's arm: never on its panel (docs/design.md
    # section 5, one person one side). In the same query (a submit's query count is unchanged).
    # (pk, center) pairs only: a panel is drawn from ids, and a trial's experts (100 in the load test,
    # docs/performance.md) need not become model instances on every submit that completes a case.
    experts = list(
        Membership.objects.select_for_update(of=("self",))
        .filter(trial=trial, role=Role.EXPERT)
        .exclude(user_id__in=Read.objects.filter(case=case, reader__isnull=False).values("reader__user_id"))
        .order_by("pk").values_list("pk", "center_id")
    )
    existing = set(Rating.objects.filter(case=case).values_list("expert_id", flat=True))
    # An expert who holds an arena task of the case may have seen its drafts, which tell which report was
    # AI-assisted: never on its reader-pair panel (docs/ai-evaluation.md, "Standalone arena", blinding).
    saw_drafts = set(ArenaTask.objects.filter(case=case).values_list("expert_id", flat=True))
    need = trial.expert_panel_size - len(existing)
    made: list[Rating] = []
    if need > 0:
        eligible = [
            pk for pk, center_id in experts
            if pk not in existing and pk not in saw_drafts
            and not (trial.experts_off_own_center and center_id is not None and center_id == case.center_id)
        ]
        # A trial's experts are its memberships with the expert role: their ratings are the trial's (no join).
        load = dict(
            Rating.objects.filter(expert_id__in=eligible)
            .values_list("expert").annotate(n=Count("id")).values_list("expert", "n")
        )
        # Least loaded first; ties broken by a keyed draw so no expert is systematically first.
        eligible.sort(key=lambda pk: (load.get(pk, 0), _hmac(trial, f"panel|{case.pk}|{pk}")))
        for expert_id in eligible[:need]:
            made.append(_new_task(case, expert_id, reads))
    # The trial's own chain (no actor): one lock of its head and one insert for the tasks and the case's status.
    changes = [audit.Change("rating:create", obj=r, after=audit.snapshot(r)) for r in made]
    if case.status == Case.Status.ENROLLED:
        before = audit.snapshot(case)
        case.status = Case.Status.READ
        case.save(update_fields=["status"])
        changes.append(audit.Change("case:read", obj=case, before=before, after=audit.snapshot(case)))
    audit.record_many(actor=None, trial=trial, changes=changes)
    return made


def _new_task(case: Case, expert_id: int, reads: list[Read]) -> Rating:
    trial = case.trial
    rating = Rating(case=case, expert_id=expert_id)
    rating.order_seed = order_seed_for(trial, rating.public_id)
    rating.order_key = _worklist_key(trial, rating.public_id)
    if len(reads) == 1:
        rating.read_a, rating.read_b = reads[0], None
    else:
        first, second = reads
        rating.read_a, rating.read_b = (second, first) if swap_from_seed(rating.order_seed) else (first, second)
    rating.save()
    return rating


# -- the expert's side --------------------------------------------------------------------------------------
# The expert's task with its case, trial and expert membership, without (_TASK) or with its row lock (_LOCKED_TASK):
# every open, save and submit reads it; compiled once per process (core.compiled; docs/performance.md).
# Its two reads come in the same row: the task's payload shows them (two queries fewer).
_TASK_RELATED = ("case__trial", "expert", "read_a", "read_b")
_TASK = CompiledQuery(lambda *, pk: Rating.objects.filter(pk=pk).select_related(*_TASK_RELATED)
                      .order_by("pk")[:1], kind="object", params={"pk": int})
_LOCKED_TASK = CompiledQuery(lambda *, pk: Rating.objects.select_for_update(of=("self",)).filter(pk=pk)
                             .select_related(*_TASK_RELATED).order_by("pk")[:1], kind="object", params={"pk": int})


def _task(query: CompiledQuery, pk: int) -> Rating:
    r = query(pk=pk)
    if r is None:
        raise Rating.DoesNotExist("Rating matching query does not exist.")
    return r


def _locked_own(actor, rating: Rating) -> Rating:
    r = _task(_LOCKED_TASK, rating.pk)
    if r.expert.user_id != getattr(actor, "pk", None) or r.expert.role != Role.EXPERT:
        raise NotAllowed("This rating task is not yours.")
    ensure_writable(r.case.trial, loaded=True)  # the trial's row was read with the task's, in this transaction
    return r


def _score(value, label: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"The quality score for {label} must be a whole number from 1 to 5.")
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise InvalidInput(f"The quality score for {label} must be a whole number from 1 to 5, not {value!r}.")
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 5:
        raise InvalidInput(f"The quality score for {label} must be a whole number from 1 to 5, not {value!r}.")
    return value


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def clean_answer(rating: Rating, data: dict, *, complete: bool) -> dict:
    """Validate an expert's answer. `complete` (submit) requires every part; autosave accepts a partial one.
    Returns only the fields present in `data`, cleaned."""
    single = rating.read_b_id is None
    allowed = {"preference", "quality_a", "quality_b", "comment", "blinding_guess"}
    unknown = set(data) - allowed
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    out: dict = _clean_guess(rating, data)
    if "preference" in data and not (single and _is_blank(data["preference"])):
        pref = data["preference"]
        if single:
            raise InvalidInput("This task scores a single report: there is no preference to give.")
        if _is_blank(pref):
            out["preference"] = ""
        else:
            pref = str(pref).strip()
            pref = {"a": "A", "b": "B", "none": "none"}.get(pref.lower(), pref)
            if pref not in PREFERENCES:
                raise InvalidInput("Preference must be A, B or none (no preference).")
            out["preference"] = pref
    for key, label in (("quality_a", "report A"), ("quality_b", "report B")):
        if key not in data:
            continue
        if key == "quality_b" and single:
            if _is_blank(data[key]):
                continue
            raise InvalidInput("This task scores a single report: there is no report B.")
        out[key] = None if _is_blank(data[key]) else _score(data[key], label)
    if "comment" in data:
        comment = "" if data["comment"] is None else str(data["comment"])
        if len(comment) > COMMENT_MAX:
            raise InvalidInput(f"The comment is too long (at most {COMMENT_MAX} characters).")
        if not storable_text(comment):
            raise InvalidInput("The comment contains a character that cannot be stored (a NUL or a lone surrogate).")
        out["comment"] = comment.strip()
    if complete:
        missing = _missing(rating, {k: getattr(rating, k) for k in allowed} | out)
        if missing:
            raise InvalidInput("Please give " + " and ".join(missing) + " before submitting.")
    return out


def _missing(rating: Rating, merged: dict) -> list[str]:
    """The parts a submitted answer still lacks (``merged``: the saved answer updated with the new one)."""
    single = rating.read_b_id is None
    missing = []
    if not single and not merged["preference"]:
        missing.append("a preference (A, B or no preference)")
    if merged["quality_a"] is None:
        missing.append("a quality score for report A")
    if not single and merged["quality_b"] is None:
        missing.append("a quality score for report B")
    if guess_asked(rating) and not merged["blinding_guess"]:
        missing.append("your guess of which report was written with AI assistance (A, B or don't know)" if not single
                       else "your guess of whether the report was written with AI assistance (yes, no or don't know)")
    return missing


def guess_asked(rating: Rating) -> bool:
    """The blinding question (docs/design.md section 5) is asked when the trial measures blinding."""
    return rating.case.trial.ask_blinding_guess


def _clean_guess(rating: Rating, data: dict) -> dict:
    if "blinding_guess" not in data or _is_blank(data["blinding_guess"]):
        return {"blinding_guess": ""} if "blinding_guess" in data else {}
    if not guess_asked(rating):
        raise InvalidInput("This task does not ask which report was written with AI assistance.")
    single = rating.read_b_id is None
    guess = GUESSES["single" if single else "pair"].get(str(data["blinding_guess"]).strip().lower())
    if guess is None and single:
        raise InvalidInput("The guess of whether the report was written with AI assistance must be A (yes), not_a "
                           "(no) or dont_know.")
    if guess is None:
        raise InvalidInput("The guess of which report was written with AI assistance must be A, B or dont_know.")
    return {"blinding_guess": guess}


@transaction.atomic
def open_rating(actor, rating: Rating) -> Rating:
    """Opening stamps opened_at once; reopening resumes. Opening a submitted task only shows it."""
    r = _task(_TASK, rating.pk)
    if r.expert.user_id != getattr(actor, "pk", None):
        raise NotAllowed("This rating task is not yours.")
    if r.status != Rating.Status.TODO or r.case.trial.is_locked:
        return r
    r = _locked_own(actor, r)
    if r.status == Rating.Status.TODO:
        before = audit.snapshot(r)
        r.status = Rating.Status.IN_PROGRESS
        r.opened_at = timezone.now()
        r.save(update_fields=["status", "opened_at"])
        audit.record(actor=actor, trial=r.case.trial, action="rating:open", obj=r, before=before,
                     after=audit.snapshot(r))
    return r


# An autosave of the expert's own unsubmitted task in a trial that is not locked (issue 19.2; as reading's
# _autosave_open_read; docs/performance.md "The light lane"): the row locked with every check rating_for_expert and
# _locked_own make in its WHERE (the task's public id in the URL's trial, the actor's expert membership of that
# trial, not locked, not done), the answer cleaned by clean_answer, one UPDATE. Anything else matches no row.
_AUTOSAVE_LOCK_SQL = (
    f'SELECT r.id, r.read_b_id, t.ask_blinding_guess FROM "{Rating._meta.db_table}" AS r '
    f'JOIN "{Membership._meta.db_table}" AS m ON m.id = r.expert_id '
    f'JOIN "{Case._meta.db_table}" AS c ON c.id = r.case_id JOIN "{Trial._meta.db_table}" AS t ON t.id = c.trial_id '
    "WHERE r.public_id = %s AND t.code = %s AND m.trial_id = t.id AND m.user_id = %s AND m.role = %s "
    "AND t.status <> %s AND r.status <> %s FOR UPDATE OF r"
)


def autosave_own_rating(actor, *, trial_code: str, public_id: str, data: dict) -> str | None:
    """The common autosave in two statements (see above): the task's status after it, or None when the task is
    not an open one of the actor's in that trial, or on SQLite (the caller then takes rating_for_expert and
    autosave_rating, which answer it). An invalid answer raises InvalidInput and writes nothing."""
    if connection.vendor != "postgresql":
        return None
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_AUTOSAVE_LOCK_SQL, [public_id, trial_code, getattr(actor, "pk", None), Role.EXPERT,
                                         Trial.Status.LOCKED, Rating.Status.DONE])
        row = cur.fetchone()
        if row is None:
            return None
        pk, read_b_id, ask_guess = row
        task = SimpleNamespace(read_b_id=read_b_id, case=SimpleNamespace(trial=SimpleNamespace(
            ask_blinding_guess=ask_guess)))  # what clean_answer reads of a task for a partial answer
        cleaned = clean_answer(task, data, complete=False)
        now = timezone.now()
        cols = [f'"{Rating._meta.get_field(k).column}" = %s' for k in cleaned]
        cur.execute(f'UPDATE "{Rating._meta.db_table}" SET {", ".join([*cols, "opened_at = COALESCE(opened_at, %s)"])}'
                    ", status = %s, autosaved_at = %s WHERE id = %s",
                    [*cleaned.values(), now, Rating.Status.IN_PROGRESS, now, pk])
    return Rating.Status.IN_PROGRESS


@transaction.atomic
def autosave_rating(actor, rating: Rating, data: dict) -> Rating:
    """Keep what the expert has entered so far (partial answers allowed). Refused after submit."""
    r = _locked_own(actor, rating)
    if r.status == Rating.Status.DONE:
        raise Conflict("This rating is already submitted; it can no longer be changed.", code="already_submitted")
    cleaned = clean_answer(r, data, complete=False)
    for k, v in cleaned.items():
        setattr(r, k, v)
    now = timezone.now()
    if r.opened_at is None:
        r.opened_at = now
    r.status = Rating.Status.IN_PROGRESS
    r.autosaved_at = now
    r.save(update_fields=[*cleaned, "opened_at", "status", "autosaved_at"])
    return r


def _same_answer(r: Rating, cleaned: dict) -> bool:
    return all(getattr(r, k) == v for k, v in cleaned.items())


# What an expert's signature of a submission covers (Trial.sign_submissions; trial.signatures).
SIGNED_FIELDS = ("preference", "quality_a", "quality_b", "comment", "blinding_guess", "submitted_at", "status",
                 "expert_id")



def _check_signature_first(actor, task: Rating | ArenaTask, signature: signatures.SignatureInput | None, *,
                           action: str) -> None:
    """Before a submit's transaction: where the trial signs submissions and the task is not yet done, check the
    password so that a wrong one is recorded even though the submit then fails (trial.signatures.check_password_first).
    Shared by ratings and arena judgements, whose status choices both call the finished state "done"."""
    if signature is None:
        return
    info = (type(task).objects.filter(pk=task.pk)
            .values("case__trial_id", "case__trial__sign_submissions", "status").first())
    if info and info["case__trial__sign_submissions"] and info["status"] != "done":
        trial = Trial.objects.get(pk=info["case__trial_id"])
        signatures.check_password_first(actor, trial, signature, action=action, obj=task)

def submit_rating(actor, rating: Rating, data: dict,
                  signature: signatures.SignatureInput | None = None) -> tuple[Rating, bool]:
    """Submit once. Returns (rating, created). Re-sending the same answer (a retried request) is answered as a
    success without storing anything again; a different answer after submit is refused. Where the trial's
    `sign_submissions` is on, a new submission needs the expert's electronic signature (authorship): a wrong
    password is recorded before the transaction (trial.signatures.check_password_first)."""
    _check_signature_first(actor, rating, signature, action="rating:submit")
    return _submit_rating(actor, rating, data, signature=signature)


@transaction.atomic
def _submit_rating(actor, rating: Rating, data: dict, *, signature) -> tuple[Rating, bool]:
    r = _locked_own(actor, rating)
    if r.status == Rating.Status.DONE:
        _repeat_or_conflict(r, data, clean_answer, _same_answer, what="rating")
        return r, False
    hold_unlocked(r.case.trial)  # not locked until this submit is stored (a submit in flight at the lock)
    cleaned = clean_answer(r, data, complete=True)
    if r.read_b_id is None:
        cleaned = {**cleaned, "preference": "", "quality_b": None}
    _store_submission(actor, r, cleaned, signature=signature, action="rating:submit", signed_fields=SIGNED_FIELDS)
    _after_rating_submitted(r)
    return r, True


def _repeat_or_conflict(task: Rating | ArenaTask, data: dict, clean, same, *, what: str) -> None:
    """A submitted task sent again: the same answer (a retried or double-clicked request) is a success that stores
    nothing (returns); a different one is refused."""
    try:
        cleaned = clean(task, data, complete=False)
    except InvalidInput:
        cleaned = None
    if cleaned is not None and same(task, cleaned):
        return
    article = "an" if what[0] in "aeiou" else "a"
    raise Conflict(f"This {what} was already submitted; {article} {what} cannot be changed or given twice.",
                   code="already_submitted")


def _store_submission(actor, task: Rating | ArenaTask, cleaned: dict, *, signature, action: str,
                      signed_fields: tuple[str, ...]) -> None:
    """A rating's or an arena judgement's submission: the answer, the times, the audit entry, and the author's
    signature where the trial's ``sign_submissions`` asks for it (checked before anything changes)."""
    trial = task.case.trial
    if trial.sign_submissions:
        signatures.reauthenticate(actor, signature)
    before = audit.snapshot(task)
    for k, v in cleaned.items():
        setattr(task, k, v)
    now = timezone.now()
    task.opened_at = task.opened_at or now
    task.submitted_at = now
    task.status = type(task).Status.DONE
    task.save()
    entry = audit.record(actor=actor, trial=trial, action=action, obj=task, before=before,
                         after=audit.snapshot(task))
    if trial.sign_submissions:
        signatures.sign_entry(actor, entry, signatures.SignatureInput(signature.password, Meaning.AUTHORSHIP),
                              obj=task, fields=signed_fields)


def _after_rating_submitted(r: Rating) -> None:
    """A case is rated when its whole panel has submitted."""
    case = Case.objects.select_for_update().get(pk=r.case_id)
    if case.status != Case.Status.READ:
        return
    if Rating.objects.filter(case=case).exclude(status=Rating.Status.DONE).exists():
        return
    if Rating.objects.filter(case=case).count() < case.trial.expert_panel_size:
        return
    before = audit.snapshot(case)
    case.status = Case.Status.RATED
    case.save(update_fields=["status"])
    audit.record(actor=None, trial=case.trial, action="case:rated", obj=case, before=before, after=audit.snapshot(case))


# -- amendments (issue 18 item 2) ---------------------------------------------------------------------------
ANSWER_FIELDS = ("preference", "quality_a", "quality_b", "comment", "blinding_guess")
REASON_MAX = 2_000


def answer_of(rating: Rating) -> dict:
    """The answer as submitted, in the task's A/B terms."""
    return {k: getattr(rating, k) for k in ANSWER_FIELDS}


def current_version(task: Rating | ArenaTask) -> tuple[RatingAmendment | ArenaAmendment | None, dict]:
    """The task's latest amendment (None before the first) and the answer it holds now: that amendment's, else the
    first submission's, in the task's A/B terms (a rating or an arena judgement)."""
    latest = task.amendments.order_by("-number").first()
    if latest is not None:
        return latest, dict(latest.amended)
    return None, answer_of(task) if isinstance(task, Rating) else arena_answer_of(task)


def _repeated_amendment(latest, *, actor, reason: str, what: str):
    """An amendment that changes nothing: a retried request (the latest amendment, by the same person with the same
    reason) is answered with that amendment; anything else is refused."""
    if latest is not None and latest.reason == reason and latest.amended_by_id == actor.pk:
        return latest
    raise Conflict(f"The amended {what} is the same as the current version: nothing to amend.", code="no_change")


def _record_amendment(model: type[RatingAmendment] | type[ArenaAmendment], *, actor, trial: Trial, action: str,
                      obj: Rating | ArenaTask, latest, role: str, reason: str, previous: dict, amended: dict,
                      **target) -> tuple[RatingAmendment | ArenaAmendment, AuditEntry]:
    """Store the next amendment of ``obj`` (``target``: the amendment's key to it, rating= or task=) and audit it
    with the answer before and after and the reason."""
    with audit.history_context(actor=actor, reason=reason):  # the row history says who and why
        amendment = model.objects.create(number=(latest.number + 1) if latest else 1, amended_by=actor,
                                         amended_as=role, reason=reason, previous=previous, amended=amended, **target)
    entry = audit.record(actor=actor, trial=trial, action=action, obj=obj, before=previous,
                         after={**amended, "amendment": amendment.number}, reason=reason)
    return amendment, entry


def clean_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Give the reason for the amendment.")
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"The reason is longer than {REASON_MAX} characters.")
    return require_storable_text(reason, "reason")


def _amender_role(actor, r: Rating) -> str:
    if r.expert.user_id == getattr(actor, "pk", None) and r.expert.role == Role.EXPERT:
        return Role.EXPERT
    # A coordinator who also reads or rates is blinded (docs/design.md section 5): another expert's answers and A/B
    # order are not theirs to see or change, whatever route reaches the service (the selector refuses too).
    if has_role(actor, r.case.trial, Role.COORDINATOR) and not is_blinded_participant(actor, r.case.trial):
        return Role.COORDINATOR
    raise NotAllowed("Only the rating's expert or a coordinator of the trial may amend it.")


@transaction.atomic
def amend_rating(*, actor, rating: Rating, answer: dict, reason: str) -> tuple[RatingAmendment, bool]:
    """Amend a submitted rating (issue 18 item 2): its expert, or a coordinator of the trial, while the trial is
    not locked, always with a reason. ``answer`` holds the parts that change (the rest is kept from the current
    version); the result must be complete, as at submit. The rating keeps its first submission (what the analysis
    counts, docs/primary_analysis.md); the amendment stores the answer before and after, audited with both. A
    repeat of the latest amendment (same answer and reason, same person) returns it with created=False; an answer
    identical to the current version is otherwise refused. Nothing here names an arm: the answer is in A/B terms."""
    r = (Rating.objects.select_for_update(of=("self",)).select_related("case__trial", "expert")
         .filter(pk=rating.pk).first())
    if r is None:
        raise NotAllowed("No such rating.")
    trial = r.case.trial
    hold_unlocked(trial)  # refused when locked, and not locked until this amendment is stored
    role = _amender_role(actor, r)
    seen = ArenaTask.objects.filter(case=r.case, expert=r.expert).filter(  # opened, or answered without opening
        Q(opened_at__isnull=False) | ~Q(status=ArenaTask.Status.TODO))
    if role == Role.EXPERT and seen.exists():
        raise Conflict("You have compared the AI drafts of this case in the arena since rating it, so the rating can "
                       "no longer be amended by you; a coordinator can amend it with a reason.", code="arena_seen")
    if r.status != Rating.Status.DONE:
        raise Conflict("Only a submitted rating can be amended; until then, change and submit it.",
                       code="not_submitted")
    reason = clean_reason(reason)
    cleaned = clean_answer(r, dict(answer or {}), complete=False)
    latest, current = current_version(r)
    new = {**current, **cleaned}
    if r.read_b_id is None:
        new["preference"], new["quality_b"] = "", None
    missing = _missing(r, new)
    if missing:
        raise InvalidInput("Please give " + " and ".join(missing) + " in the amended rating.")
    if new == current:
        return _repeated_amendment(latest, actor=actor, reason=reason, what="rating"), False
    amendment, _ = _record_amendment(RatingAmendment, actor=actor, trial=trial, action="rating:amend", obj=r,
                                     latest=latest, role=role, reason=reason, previous=current, amended=new, rating=r)
    return amendment, True


# -- the standalone arena (issue 20 item 1; docs/ai-evaluation.md, "Standalone arena") ---------------------------
# Experts compare two model versions' drafts of a case directly, without readers. The arena's versions are
# inference.selectors.arena_model_versions (the AI arms' versions unless a coordinator set others). Per case, one pair
# of the versions with a usable draft is drawn uniformly among all pairs from the trial's secret (never adaptively:
# the draw depends on the case and the secret only), and each task's sides from its own seed, as for ratings.
ARENA_PREFERENCES = tuple(ArenaTask.Preference.values)  # "A", "B", "tie"
ARENA_EXCLUSIONS = ("missing", "queued", "failed", "withheld", "empty")


@dataclass
class ArenaDraw:
    """What one call of :func:`create_arena_tasks` found and made. ``excluded_drafts`` counts, over the cases
    considered and the arena's versions, the drafts left out of the arena: missing (never queued), queued or running
    (not ready yet), failed, withheld (out of distribution, trial setting) and empty (no text)."""

    versions: list[str]
    cases_considered: int = 0
    cases_in_arena: int = 0
    cases_without_pair: int = 0
    cases_short_of_panel: int = 0
    tasks_made: int = 0
    excluded_drafts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ARENA_EXCLUSIONS, 0))


def arena_pair_seed(trial: Trial, case: Case) -> str:
    """The recorded seed of a case's pair draw."""
    return _hmac(trial, f"arena-pair|{case.pk}")


def arena_order_seed(trial: Trial, public_id: str) -> str:
    """The recorded seed of one arena task's sides."""
    return _hmac(trial, f"arena-order|{public_id}")


def arena_drafts(case: Case, versions: list[ModelVersion]) -> tuple[list[Draft], Counter]:
    """The case's usable drafts of ``versions`` (ready, shown, with text), in the versions' order, and the reasons
    the others are left out (ARENA_EXCLUSIONS)."""
    drafts = Draft.objects.filter(case=case, model_version__in=versions)
    return sort_arena_drafts({d.model_version_id: d for d in drafts}, versions)


def sort_arena_drafts(by_version: dict[int, Draft], versions: list[ModelVersion]) -> tuple[list[Draft], Counter]:
    """``arena_drafts`` over one case's drafts already loaded, keyed by model version id (no query: the coordinator's
    page sorts every case's drafts from one query)."""
    usable: list[Draft] = []
    excluded: Counter = Counter()
    for mv in versions:
        d = by_version.get(mv.pk)
        if d is None:
            excluded["missing"] += 1
        elif d.status == Draft.Status.FAILED:
            excluded["failed"] += 1
        elif d.status != Draft.Status.READY:
            excluded["queued"] += 1
        elif d.is_withheld:  # the trial withholds out-of-distribution drafts from readers: from experts too
            excluded["withheld"] += 1
        elif not (d.findings_text.strip() or d.impression_text.strip()):
            excluded["empty"] += 1
        else:
            usable.append(d)
    return usable, excluded


def draw_arena_pair(trial: Trial, case: Case, drafts: list[Draft]) -> tuple[Draft, Draft] | None:
    """One pair of ``drafts`` (two or more, in the versions' name order), uniform over all k(k-1)/2 pairs, drawn
    from the trial's secret and the case: fixed in advance, the same whoever asks, independent of any judgement."""
    if len(drafts) < 2:
        return None
    pairs = list(combinations(drafts, 2))
    return pairs[int(arena_pair_seed(trial, case)[:14], 16) % len(pairs)]


def _arena_experts(trial: Trial, experts: list[Membership] | None) -> list[Membership]:
    locked = list(Membership.objects.select_for_update(of=("self",)).filter(trial=trial, role=Role.EXPERT)
                  .select_related("user").order_by("pk"))
    if experts is None:
        return locked
    wanted = {m.pk for m in experts}
    chosen = [m for m in locked if m.pk in wanted]
    if len(chosen) != len(wanted):
        raise InvalidInput("Every arena expert must be an expert of this trial.")
    return chosen


def _arena_sample(trial: Trial, paired: list[Case], with_tasks: set[int], sample_size: int | None) -> list[Case]:
    """The cases of the arena: all those with a pair, or ``sample_size`` of them, drawn from the secret (a keyed
    order of the cases, so the sample is reproducible); cases that already have tasks stay in it."""
    if sample_size is None:
        return paired
    keep = [c for c in paired if c.pk in with_tasks]
    rest = sorted((c for c in paired if c.pk not in with_tasks), key=lambda c: _hmac(trial, f"arena-sample|{c.pk}"))
    return keep + rest[:max(sample_size - len(keep), 0)]


@transaction.atomic
def create_arena_tasks(*, actor, trial: Trial, sample_size: int | None = None,
                       experts: list[Membership] | None = None) -> ArenaDraw:
    """Make the standalone arena's tasks (idempotent: a rerun tops up short panels and adds cases whose drafts have
    become ready). For each enrolled case, the arena versions' usable drafts (:func:`arena_drafts`; the others are
    counted by reason); a case with two or more gets one pair drawn from the secret (:func:`draw_arena_pair`), given
    to ``trial.expert_panel_size`` experts (least loaded first, ties broken by a keyed draw; the trial's
    experts-off-own-center rule applies) chosen among ``experts`` (default: all the trial's experts; a coordinator
    may name a set disjoint from the reader-pair raters). ``sample_size`` limits the arena to that many cases, drawn
    from the secret. Locks the cases in id order, then the experts, as rating panels do."""
    ensure_coordinator(actor, trial)
    ensure_writable(trial)
    if sample_size is not None and (isinstance(sample_size, bool) or not isinstance(sample_size, int)
                                    or sample_size < 1):
        raise InvalidInput("The arena's sample size must be a whole number of cases, 1 or more.")
    versions = arena_model_versions(trial)
    if len(versions) < 2:
        raise InvalidInput("The arena needs two or more model versions: give the trial a second AI arm, or set the "
                           "arena's versions.")
    draw = ArenaDraw(versions=[mv.name for mv in versions])
    cases = list(Case.objects.select_for_update(of=("self",)).select_related("trial")
                 .filter(trial=trial, enrolled_at__isnull=False, library=False)
                 .exclude(status=Case.Status.EXCLUDED).order_by("pk"))
    pool = _arena_experts(trial, experts)
    existing: dict[int, list[ArenaTask]] = {}
    for t in ArenaTask.objects.filter(case__trial=trial).select_related("draft_a", "draft_b"):
        existing.setdefault(t.case_id, []).append(t)
    pairs: dict[int, tuple[Draft, Draft]] = {}
    for case in cases:
        draw.cases_considered += 1
        usable, excluded = arena_drafts(case, versions)
        for reason, n in excluded.items():
            draw.excluded_drafts[reason] += n
        if case.pk in existing:  # the pair drawn before stays (a draft that failed since keeps its judgements)
            first = existing[case.pk][0]
            pairs[case.pk] = tuple(sorted((first.draft_a, first.draft_b), key=lambda d: d.model_version.name))
            continue
        pair = draw_arena_pair(trial, case, usable)
        if pair is None:
            draw.cases_without_pair += 1
        else:
            pairs[case.pk] = pair
    load = Counter(ArenaTask.objects.filter(case__trial=trial).values_list("expert_id", flat=True))
    readers_of: dict[int, set[int]] = {}  # a person who reads a case judges none of its drafts (as rating panels)
    for case_id, user_id in Read.objects.filter(case__trial=trial, reader__isnull=False).values_list(
            "case_id", "reader__user_id"):
        readers_of.setdefault(case_id, set()).add(user_id)
    for case in _arena_sample(trial, [c for c in cases if c.pk in pairs], set(existing), sample_size):
        draw.cases_in_arena += 1
        have = {t.expert_id for t in existing.get(case.pk, [])}
        eligible = [e for e in pool if e.pk not in have and e.user_id not in readers_of.get(case.pk, ()) and not (
            trial.experts_off_own_center and e.center_id is not None and e.center_id == case.center_id)]
        eligible.sort(key=lambda e: (load[e.pk], _hmac(trial, f"arena-panel|{case.pk}|{e.pk}")))
        need = max(trial.expert_panel_size - len(have), 0)
        for expert in eligible[:need]:
            _new_arena_task(case, expert, pairs[case.pk])
            load[expert.pk] += 1
            draw.tasks_made += 1
        if len(have) + len(eligible[:need]) < trial.expert_panel_size:
            draw.cases_short_of_panel += 1
    audit.record(actor=actor, trial=trial, action="arena:draw", object_type="rating.ArenaTask",
                 object_id=str(trial.pk), after={**draw.__dict__, "sample_size": sample_size,
                                                 "experts": sorted(m.pk for m in pool)})
    return draw


def _new_arena_task(case: Case, expert: Membership, pair: tuple[Draft, Draft]) -> ArenaTask:
    trial = case.trial
    task = ArenaTask(case=case, expert=expert, pair_seed=arena_pair_seed(trial, case))
    task.order_seed = arena_order_seed(trial, task.public_id)
    task.order_key = int(_hmac(trial, f"arena-worklist|{task.public_id}")[:14], 16)
    first, second = pair
    task.draft_a, task.draft_b = (second, first) if swap_from_seed(task.order_seed) else (first, second)
    task.save()
    audit.record(actor=None, trial=trial, action="arena:create", obj=task, after=audit.snapshot(task))
    return task


def arena_blocked(task: ArenaTask) -> bool:
    """The blinding rule (docs/ai-evaluation.md, "Standalone arena"): an expert who rates the case's blinded reader
    reports must submit that rating before seeing the case's drafts, which would tell which report was AI-assisted.
    (Rating panels, for their part, never take an expert who holds an arena task of the case.)"""
    return Rating.objects.filter(case_id=task.case_id, expert_id=task.expert_id).exclude(
        status=Rating.Status.DONE).exists()


def _locked_own_arena(actor, task: ArenaTask) -> ArenaTask:
    t = ArenaTask.objects.select_for_update(of=("self",)).select_related("case__trial", "expert").get(pk=task.pk)
    if t.expert.user_id != getattr(actor, "pk", None) or t.expert.role != Role.EXPERT or arena_blocked(t):
        raise NotAllowed("This arena task is not yours, or not available yet.")
    hold_unlocked(t.case.trial)  # and unlocked until this transaction ends (a submit in flight at the lock)
    return t


def clean_arena_answer(task: ArenaTask, data: dict, *, complete: bool) -> dict:
    """Validate an expert's arena answer: preference A, B or tie (required to submit), quality of each draft 1-5
    (optional), comment (optional). Returns only the fields present in ``data``, cleaned."""
    allowed = {"preference", "quality_a", "quality_b", "comment"}
    unknown = set(data) - allowed
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    out: dict = {}
    if "preference" in data:
        pref = data["preference"]
        if _is_blank(pref):
            out["preference"] = ""
        else:
            pref = {"a": "A", "b": "B", "tie": "tie", "none": "tie"}.get(str(pref).strip().lower())
            if pref is None:
                raise InvalidInput("Preference must be A, B or tie.")
            out["preference"] = pref
    for key, label in (("quality_a", "draft A"), ("quality_b", "draft B")):
        if key in data:
            out[key] = None if _is_blank(data[key]) else _score(data[key], label)
    if "comment" in data:
        comment = "" if data["comment"] is None else str(data["comment"])
        if len(comment) > COMMENT_MAX:
            raise InvalidInput(f"The comment is too long (at most {COMMENT_MAX} characters).")
        if not storable_text(comment):
            raise InvalidInput("The comment contains a character that cannot be stored (a NUL or a lone surrogate).")
        out["comment"] = comment.strip()
    if complete and not out.get("preference", task.preference):
        raise InvalidInput("Please give a preference (A, B or tie) before submitting.")
    return out


@transaction.atomic
def open_arena_task(actor, task: ArenaTask) -> ArenaTask:
    """Opening stamps opened_at once (the expert has now seen the case's drafts); reopening resumes."""
    t = _locked_own_arena(actor, task) if not task.case.trial.is_locked else task
    if t.status == ArenaTask.Status.TODO and not t.case.trial.is_locked:
        t.status = ArenaTask.Status.IN_PROGRESS
        t.opened_at = timezone.now()
        t.save(update_fields=["status", "opened_at"])
        audit.record(actor=actor, trial=t.case.trial, action="arena:open", obj=t, after={"status": t.status})
    return t


@transaction.atomic
def autosave_arena_task(actor, task: ArenaTask, data: dict) -> ArenaTask:
    """Keep a partial answer. Refused after submit."""
    t = _locked_own_arena(actor, task)
    if t.status == ArenaTask.Status.DONE:
        raise Conflict("This arena judgement is already submitted; it can no longer be changed.",
                       code="already_submitted")
    cleaned = clean_arena_answer(t, data, complete=False)
    for k, v in cleaned.items():
        setattr(t, k, v)
    now = timezone.now()
    t.opened_at = t.opened_at or now
    t.status = ArenaTask.Status.IN_PROGRESS
    t.autosaved_at = now
    t.save(update_fields=[*cleaned, "opened_at", "status", "autosaved_at"])
    return t


# What an expert's signature of an arena judgement covers (Trial.sign_submissions; as SIGNED_FIELDS for ratings).
ARENA_SIGNED_FIELDS = ("preference", "quality_a", "quality_b", "comment", "submitted_at", "status", "expert_id")


def submit_arena_task(actor, task: ArenaTask, data: dict,
                      signature: signatures.SignatureInput | None = None) -> tuple[ArenaTask, bool]:
    """Submit once, in one transaction under the task's row lock. Returns (task, created): the same answer sent
    again (a retried or double-clicked request) is a success that stores nothing; a different one is refused.
    Where the trial's `sign_submissions` is on, a new judgement needs the expert's electronic signature
    (authorship), exactly as :func:`submit_rating`: a wrong password is recorded before the transaction."""
    _check_signature_first(actor, task, signature, action="arena:submit")
    return _submit_arena_task(actor, task, data, signature=signature)


@transaction.atomic
def _submit_arena_task(actor, task: ArenaTask, data: dict, *, signature) -> tuple[ArenaTask, bool]:
    t = _locked_own_arena(actor, task)
    if t.status == ArenaTask.Status.DONE:
        _repeat_or_conflict(t, data, clean_arena_answer, _same_arena_answer, what="arena judgement")
        return t, False
    cleaned = clean_arena_answer(t, data, complete=True)
    _store_submission(actor, t, cleaned, signature=signature, action="arena:submit", signed_fields=ARENA_SIGNED_FIELDS)
    return t, True


def _same_arena_answer(t: ArenaTask, cleaned: dict) -> bool:
    return all(getattr(t, k) == v for k, v in cleaned.items())


# -- amending an arena judgement (as a rating's amendment, issue 18 item 2) -------------------------------------
ARENA_ANSWER_FIELDS = ("preference", "quality_a", "quality_b", "comment")
# What the signature of an amendment covers, its expert's or a coordinator's (Trial.sign_submissions). Each
# signature stores its own field list (trial.signatures.sign_entry), so older ones, without amended_as, still verify.
ARENA_AMENDMENT_SIGNED_FIELDS = ("task_id", "number", "amended_by_id", "amended_as", "reason", "previous", "amended")


def arena_answer_of(task: ArenaTask) -> dict:
    """The judgement as submitted, in the task's A/B terms."""
    return {k: getattr(task, k) for k in ARENA_ANSWER_FIELDS}


def _locked_arena_for_amendment(actor, task: ArenaTask) -> tuple[ArenaTask, str]:
    """The task under a row lock and the role its amendment is made in: its own expert (while the arena's blinding
    rule makes it available to them), else a coordinator of the trial who is not a blinded participant (one who also
    reads or rates must not see others' judgements; docs/design.md section 5). Refused once the trial is locked."""
    t = ArenaTask.objects.select_for_update(of=("self",)).select_related("case__trial", "expert").get(pk=task.pk)
    trial = t.case.trial
    if t.expert.user_id == getattr(actor, "pk", None) and t.expert.role == Role.EXPERT and not arena_blocked(t):
        role = Role.EXPERT
    elif has_role(actor, trial, Role.COORDINATOR) and not is_blinded_participant(actor, trial):
        role = Role.COORDINATOR
    else:
        raise NotAllowed("Only the judgement's expert or a coordinator of the trial may amend it.")
    ensure_writable(trial)
    return t, role


def amend_arena_task(*, actor, task: ArenaTask, answer: dict, reason: str,
                     signature: signatures.SignatureInput | None = None) -> tuple[ArenaAmendment, bool]:
    """Amend a submitted arena judgement: its expert, or a coordinator of the trial who neither reads nor rates in it
    (trial.blinding), while the trial is not locked, always with a reason, as a rating's amendment
    (:func:`amend_rating`). ``answer`` holds the parts that change; the result needs a preference, as at submit. The
    task keeps its first submission (what the arena's analysis counts); the amendment stores the answer before and
    after in A/B terms (no version) and the role it was made in, audited with both, and signed (authorship of the
    amendment, by whoever makes it) where the trial signs submissions: a wrong password is recorded before the
    transaction. A repeat of the latest amendment (same answer and reason, same person) returns it with
    created=False; an answer identical to the current version is refused."""
    if signature is not None and task.case.trial.sign_submissions:
        signatures.check_password_first(actor, task.case.trial, signature, action="arena:amend", obj=task)
    return _amend_arena_task(actor, task, answer, reason, signature=signature)


@transaction.atomic
def _amend_arena_task(actor, task: ArenaTask, answer: dict, reason: str, *, signature) -> tuple[ArenaAmendment, bool]:
    t, role = _locked_arena_for_amendment(actor, task)
    trial = t.case.trial
    if t.status != ArenaTask.Status.DONE:
        raise Conflict("Only a submitted judgement can be amended; until then, change and submit it.",
                       code="not_submitted")
    reason = clean_reason(reason)
    cleaned = clean_arena_answer(t, dict(answer or {}), complete=False)
    latest, current = current_version(t)
    new = {**current, **cleaned}
    if not new.get("preference"):
        raise InvalidInput("Please give a preference (A, B or tie) in the amended judgement.")
    if new == current:
        return _repeated_amendment(latest, actor=actor, reason=reason, what="judgement"), False
    if trial.sign_submissions:
        signatures.reauthenticate(actor, signature)
    amendment, entry = _record_amendment(ArenaAmendment, actor=actor, trial=trial, action="arena:amend", obj=t,
                                         latest=latest, role=role, reason=reason, previous=current, amended=new, task=t)
    if trial.sign_submissions:
        signatures.sign_entry(actor, entry, signatures.SignatureInput(signature.password, Meaning.AUTHORSHIP),
                              obj=amendment, fields=ARENA_AMENDMENT_SIGNED_FIELDS)
    return amendment, True
