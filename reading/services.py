"""Writes for reads. Each public function is one transaction."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher
from types import SimpleNamespace

from django.db import connection, transaction
from django.db.models import Count
from django.http import Http404
from django.utils import timezone

from core.compiled import CompiledQuery
from core.errors import Conflict, InvalidInput, TrialLocked, require_storable_text, storable_text
from core.keyed import keyed_int
from inference.selectors import arm_model_version, ready_draft
from trial import audit, signatures
from trial.models import Case, Membership, Trial
from trial.permissions import Role, has_role
from trial.services import hold_unlocked
from trial.signatures import Meaning

from . import signals
from .models import Read, ReadAmendment
from .selectors import BOX_DECISIONS, shown_boxes, unavailable_reason


def worklist_order_key(trial: Trial, reader_id: int, case_id: int, session: int = 1) -> int:
    """Each reader's worklist order: a keyed hash (the trial's secret is the recorded seed), so it is
    reproducible, differs per reader and reveals nothing about arm or case order."""
    return keyed_int(trial.secret, reader_id, case_id, session)


def _least_loaded_reader(trial: Trial, arm, center) -> Membership | None:
    """The enrolled reader at the case's center with the fewest reads (ties: the earliest membership). In reader-
    randomised designs the reader must be of the read's arm; in the case-randomised design readers have no arm and
    any enrolled reader at the center reads the case in its allocated arm."""
    qs = Membership.objects.filter(trial=trial, role=Role.READER, center=center, enrolled_at__isnull=False)
    if trial.randomisation_unit == "reader":
        qs = qs.filter(arm=arm)
    return (
        qs.annotate(n=Count("reads"))
        .order_by("n", "pk")
        .first()
    )


def _new_read(case: Case, arm, reader: Membership | None, session: int = 1, after_read: Read | None = None) -> Read:
    key = worklist_order_key(case.trial, reader.pk if reader else 0, case.pk, session)
    return Read.objects.create(case=case, arm=arm, reader=reader, session=session, after_read=after_read, order_key=key)


@transaction.atomic
def create_reads_for_case(case: Case, actor=None) -> list[Read]:
    """Reads from the design (docs/design.md sections 1 and 4), made inside the enrolment's transaction."""
    trial = case.trial
    arms = list(trial.arms.all())
    reads: list[Read] = []
    if trial.design == Trial.Design.PAIRED_BY_CASE:
        for arm in arms:
            reads.append(_new_read(case, arm, _least_loaded_reader(trial, arm, case.center)))
    elif trial.design == Trial.Design.CASE_RANDOMISED:
        reads.append(_new_read(case, case.arm, _least_loaded_reader(trial, case.arm, case.center)))
    else:  # crossover: every enrolled reader reads the case in both arms, own arm first
        readers = Membership.objects.filter(trial=trial, role=Role.READER, enrolled_at__isnull=False)
        for reader in readers:
            reads.extend(_crossover_reads(case, reader, arms))
    for r in reads:
        audit.record(actor=actor, trial=trial, action="create", obj=r, after=audit.snapshot(r))
    return reads


def _crossover_reads(case: Case, reader: Membership, arms) -> list[Read]:
    ordered = sorted(arms, key=lambda a: (a.pk != reader.arm_id, a.code))
    first = _new_read(case, ordered[0], reader, session=1)
    out = [first]
    for i, arm in enumerate(ordered[1:], start=2):
        out.append(_new_read(case, arm, reader, session=i, after_read=first))
    return out


@transaction.atomic
def on_reader_enrolled(reader: Membership, actor=None) -> list[Read]:
    """A reader enrolled after cases: take over unassigned reads of their arm and center (paired / case-randomised),
    or get both reads of every enrolled case (crossover)."""
    trial = reader.trial
    made: list[Read] = []
    if trial.design == Trial.Design.CROSSOVER:
        arms = list(trial.arms.all())
        for case in trial.cases.filter(enrolled_at__isnull=False).exclude(reads__reader=reader):
            made.extend(_crossover_reads(case, reader, arms))
        for r in made:
            audit.record(actor=actor, trial=trial, action="create", obj=r, after=audit.snapshot(r))
        return made
    unassigned = Read.objects.select_for_update().filter(
        case__trial=trial, case__center=reader.center, reader__isnull=True
    )
    if trial.randomisation_unit == "reader":
        unassigned = unassigned.filter(arm=reader.arm)
    for r in unassigned:
        before = audit.snapshot(r)
        r.reader = reader
        r.order_key = worklist_order_key(trial, reader.pk, r.case_id, r.session)
        r.save(update_fields=["reader", "order_key"])
        audit.record(actor=actor, trial=trial, action="assign", obj=r, before=before, after=audit.snapshot(r))
        made.append(r)
    return made


# -- the reader's side: open, heartbeat, autosave, submit (issue 4) -------------------------------------------
# Each is one transaction holding the Read row (select_for_update), refuses writes to a locked trial, and acts
# only on the actor's own read. Opening and submitting are audited. Autosaves and heartbeats are NOT audited:
# they are frequent, in-progress states (the audit chain would grow by one entry every few seconds per reader);
# the report as submitted, with its times, is what the submit entry records.

TEXT_MAX = 20_000
HEARTBEAT_MAX_SECONDS = 600.0  # one beat never claims more than this, whatever the wall time since the last
CONFIDENCE_RANGE = range(1, 6)
DRAFT_THRESHOLD = 0.5


#: What a heartbeat or an autosave reads of the read's case, trial and reader (issue 19: the request's own CPU):
#: the trial's status, code and findings, the reader's user and role; the read's own columns in full.
_LIGHT_RELATED = ("case__id", "case__trial__id", "case__trial__status", "case__trial__code",
                  "case__trial__findings", "reader__id", "reader__user_id", "reader__role")


def _first_writable(rows, read: Read | str) -> Read:
    """The read from ``rows`` (a locking queryset with the case's trial), by public id or instance: 404 when there
    is none, TrialLocked when its trial is locked (read from the same row, inside the caller's transaction)."""
    locked = rows.filter(public_id=read).first() if isinstance(read, str) else rows.filter(pk=read.pk).first()
    return _writable(locked)


def _writable(locked: Read | None) -> Read:
    if locked is None:
        raise Http404("No such read.")
    if locked.case.trial.status == Trial.Status.LOCKED:
        raise TrialLocked(f"Trial {locked.case.trial.code} is locked: its data is read-only.")
    return locked


def _own_rows(light: bool):
    if light:
        return Read.objects.select_for_update(of=("self",)).select_related("case__trial", "reader").only(
            *(f.attname for f in Read._meta.concrete_fields), *_LIGHT_RELATED)
    return Read.objects.select_for_update(of=("self",)).select_related(
        "case", "case__trial", "arm", "arm__model_assignment__model_version", "reader")


# Every open, heartbeat, autosave and submit locks the reader's read with its case, trial (arm, model): the SQL
# compiled once per process (core.compiled; docs/performance.md), by public id (the API) or by primary key.
# Ownership is in the WHERE: another reader's read is never locked or waited for (its reader's submit holds the
# row; a probe that waited would learn the read exists and is being written), and is the unknown id's 404
# (tests/security/test_probe_parity.py).
_OWN_READ = {
    (light, "public_id"): CompiledQuery(lambda *, public_id, user_id, light=light: _own_rows(light).filter(
        public_id=public_id, reader__user_id=user_id, reader__role=Role.READER).order_by("pk")[:1],
        kind="object", params={"public_id": str, "user_id": int})
    for light in (False, True)
} | {
    (light, "pk"): CompiledQuery(lambda *, pk, user_id, light=light: _own_rows(light).filter(
        pk=pk, reader__user_id=user_id, reader__role=Role.READER).order_by("pk")[:1],
        kind="object", params={"pk": int, "user_id": int})
    for light in (False, True)
}


def _locked_own_read(actor, read: Read | str, *, light: bool = False) -> Read:
    """The actor's read, locked, in one query (issue 19: heartbeat and autosave take <= 3 queries): the row with
    its case, trial, arm and reader. The trial's status comes from this query, inside the caller's transaction, so
    a locked trial is refused as ensure_writable would. ``read``: a Read, or its public id (the API's case: an
    unknown id, or another reader's read, is 404, as reading.selectors.read_for_reader answers). ``light``: only
    the case, trial and reader columns a heartbeat or autosave of an opened read uses, no arm or model version (a
    fifth of the columns)."""
    user_id = getattr(actor, "pk", None) or 0  # no user: no read matches (a compiled query takes no None)
    if isinstance(read, str):
        return _writable(_OWN_READ[light, "public_id"](public_id=read, user_id=user_id))
    return _writable(_OWN_READ[light, "pk"](pk=read.pk, user_id=user_id))


def _ensure_available(read: Read) -> None:
    reason = unavailable_reason(read)
    if reason:
        raise Conflict(reason, code="not_available")


def _clean_text(data: dict, key: str) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be text.")
    if len(value) > TEXT_MAX:
        raise InvalidInput(f"{key} is longer than {TEXT_MAX} characters.")
    if not storable_text(value):
        raise InvalidInput(f"{key} contains a character that cannot be stored (a NUL or a lone surrogate).")
    return value.replace("\r\n", "\n")



def clean_report(trial: Trial, data, *, complete: bool) -> dict:
    """Validate a report payload: {findings_text, impression_text, finding_marks: {code: {present, confidence}}}.
    Autosaves may be partial (unmarked findings stay null); a submit needs text and every finding marked present
    or absent with a confidence of 1-5."""
    return clean_report_codes(trial.finding_codes, data, complete=complete)


def clean_report_codes(codes: list[str], data, *, complete: bool) -> dict:
    """clean_report for a trial whose finding codes are ``codes``."""
    if not isinstance(data, dict):
        raise InvalidInput("The report must be a JSON object.")
    findings_text = _clean_text(data, "findings_text")
    impression_text = _clean_text(data, "impression_text")
    marks_in = data.get("finding_marks") or {}
    if not isinstance(marks_in, dict):
        raise InvalidInput("finding_marks must be an object {code: {present, confidence}}.")
    unknown = sorted(set(marks_in) - set(codes))
    if unknown:
        raise InvalidInput(f"Unknown findings: {', '.join(map(str, unknown))}.")
    marks: dict = {}
    for code in codes:
        m = marks_in.get(code) or {}
        if not isinstance(m, dict):
            raise InvalidInput(f"The mark for {code} must be an object {{present, confidence}}.")
        present, confidence = m.get("present"), m.get("confidence")
        if present is not None and not isinstance(present, bool):
            raise InvalidInput(f"{code}: present must be true or false.")
        if confidence is not None:
            if isinstance(confidence, bool) or not isinstance(confidence, int) or confidence not in CONFIDENCE_RANGE:
                raise InvalidInput(f"{code}: confidence must be a whole number from 1 to 5.")
        if complete and (present is None or confidence is None):
            raise InvalidInput(f"Mark {code.replace('_', ' ')} present or absent, with a confidence of 1-5.")
        marks[code] = {"present": present, "confidence": confidence}
    if complete and not (findings_text.strip() or impression_text.strip()):
        raise InvalidInput("Write the findings or the impression before submitting.")
    return {"findings_text": findings_text, "impression_text": impression_text, "finding_marks": marks}


def clean_box_reviews(read: Read, value) -> dict[str, str]:
    """The reader's decision per AI box (issue 21 item 1): {box id: "accepted" | "rejected" | null (undecided)}.
    Only the ids of the boxes the read shows (reading.selectors.shown_boxes): none for an unassisted read, a read
    without a draft or a withheld draft, so anything but an empty object is refused there."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("box_reviews must be an object {box id: accepted or rejected}.")
    if not value:
        return {}
    ids = {b["id"] for b in shown_boxes(read, read.draft if read.draft_id else None)}
    if not ids:
        raise InvalidInput("This read shows no AI boxes to review.")
    unknown = sorted(str(k) for k in set(value) - ids)
    if unknown:
        raise InvalidInput(f"Unknown boxes: {', '.join(unknown[:5])}.")
    out = {}
    for key, decision in value.items():
        if decision is None:
            continue
        if decision not in BOX_DECISIONS:
            raise InvalidInput(f"Box {key}: the decision must be accepted or rejected.")
        out[key] = decision
    return dict(sorted(out.items()))


def _apply_box_reviews(read: Read, data, fields: list[str]) -> None:
    """A report that carries box_reviews replaces the read's (a report without the key leaves them as they were)."""
    if isinstance(data, dict) and "box_reviews" in data:
        read.box_reviews = clean_box_reviews(read, data["box_reviews"])
        fields.append("box_reviews")


def clean_seconds(value) -> float:
    """Active seconds as the client sends them: a non-negative number; None or an empty string is 0."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool):
        raise InvalidInput("seconds must be a number.")
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("seconds must be a number.") from exc
    if seconds != seconds or seconds < 0 or seconds in (float("inf"),):
        raise InvalidInput("seconds must be a non-negative number.")
    return seconds


def _credit_active_time(read: Read, seconds: float, now) -> float:
    """Add the client's active seconds, capped by the wall time since the last beat (or the open), so a client
    cannot claim more time than has passed. Returns the credited increment."""
    since = read.last_heartbeat_at or read.opened_at or now
    elapsed = max(0.0, (now - since).total_seconds())
    credited = min(seconds, elapsed, HEARTBEAT_MAX_SECONDS)
    read.active_seconds = (read.active_seconds or 0.0) + credited
    read.last_heartbeat_at = now
    return credited


@transaction.atomic
def open_read(actor, read: Read | str) -> Read:
    """First open stamps opened_at and, in an AI arm, stores the draft shown and prefills the report with its
    text. Reopening resumes (same read, same clock); a submitted read opens read-only and changes nothing."""
    read = _locked_own_read(actor, read)
    if read.is_submitted:
        return read
    _ensure_available(read)
    now = timezone.now()
    first = read.opened_at is None
    fields = ["last_heartbeat_at"]
    read.last_heartbeat_at = now  # the active-time cap counts from this (re)open
    if first:
        read.opened_at = now
        read.status = Read.Status.IN_PROGRESS
        fields += ["opened_at", "status"]
        if read.arm.is_ai and read.draft_id is None:
            draft = ready_draft(read.case, arm_model_version(read.arm))
            read.draft = draft
            shown = draft is not None and not draft.is_withheld  # a withheld draft (OOD) pre-fills nothing
            if shown and not (read.findings_text or read.impression_text):
                read.findings_text = draft.findings_text
                read.impression_text = draft.impression_text
            if shown and read.case.trial.prefill_draft_findings and not read.finding_marks:
                read.prefilled_marks = prefilled_choices(draft, read.case.trial.finding_codes)
                read.finding_marks = {c: {"present": p, "confidence": None} for c, p in read.prefilled_marks.items()}
            fields += ["draft", "findings_text", "impression_text", "finding_marks", "prefilled_marks"]
    read.save(update_fields=fields)
    if first:
        audit.record(actor=actor, trial=read.case.trial, action="read:open", obj=read,
                     after={"opened_at": read.opened_at, "status": read.status, "draft_id": read.draft_id,
                            "prefilled_marks": read.prefilled_marks})
    return read


@dataclass(frozen=True)
class ReadState:
    """What a heartbeat or an autosave answers: the read's status, active seconds, last autosave, submitted or not."""

    status: str
    active_seconds: float
    is_submitted: bool
    autosaved_at: datetime | None = None

    @classmethod
    def of(cls, read: Read) -> ReadState:
        return cls(status=read.status, active_seconds=read.active_seconds or 0.0, is_submitted=read.is_submitted,
                   autosaved_at=read.autosaved_at)


# The heartbeat of an opened, unsubmitted read of the actor's own, in a trial that is not locked, is one UPDATE
# (issue 19.2; docs/performance.md "Server CPU per request"): the row is locked by the UPDATE itself, the checks
# are in its WHERE, the credit is _credit_active_time's rule in SQL (the client's seconds, capped by the wall time
# since the last beat or the open and by HEARTBEAT_MAX_SECONDS). Anything else (unknown id, another reader's read,
# a locked trial, a read not opened or already submitted) matches no row and takes the general path below, which
# answers it as before. A concurrent submit holds the row: the UPDATE waits, re-checks submitted_at, matches nothing.
_HEARTBEAT_SQL = (
    f'UPDATE "{Read._meta.db_table}" AS r SET '
    "active_seconds = COALESCE(r.active_seconds, 0) + LEAST(%s::double precision, GREATEST(0::double precision, "
    "EXTRACT(EPOCH FROM (%s::timestamptz - COALESCE(r.last_heartbeat_at, r.opened_at)))::double precision), "
    "%s::double precision), last_heartbeat_at = %s "
    f'FROM "{Membership._meta.db_table}" AS m, "{Case._meta.db_table}" AS c, "{Trial._meta.db_table}" AS t '
    "WHERE r.public_id = %s AND r.opened_at IS NOT NULL AND r.submitted_at IS NULL AND m.id = r.reader_id "
    "AND m.user_id = %s AND m.role = %s AND c.id = r.case_id AND t.id = c.trial_id AND t.status <> %s "
    "RETURNING r.status, r.active_seconds"
)


@transaction.atomic
def heartbeat(actor, read: Read | str, seconds) -> ReadState:
    """Credit active seconds (see _credit_active_time). A beat for a submitted read is ignored. Not audited.
    ``read``: a Read or its public id (one UPDATE for an open read of the actor's, else the locked row and its
    update)."""
    seconds = clean_seconds(seconds)
    now = timezone.now()
    if connection.vendor == "postgresql":  # the SQL is PostgreSQL's; the demo's SQLite takes the general path
        public_id = read if isinstance(read, str) else read.public_id
        with connection.cursor() as cur:
            cur.execute(_HEARTBEAT_SQL, [seconds, now, HEARTBEAT_MAX_SECONDS, now, public_id,
                                         getattr(actor, "pk", None), Role.READER, Trial.Status.LOCKED])
            row = cur.fetchone()
        if row is not None:
            return ReadState(status=row[0], active_seconds=row[1], is_submitted=False)
    read = _locked_own_read(actor, read, light=True)
    if not (read.is_submitted or read.opened_at is None):
        _credit_active_time(read, seconds, now)
        read.save(update_fields=["active_seconds", "last_heartbeat_at"])
    return ReadState.of(read)


# An autosave of an opened, unsubmitted read of the actor's own, in a trial that is not locked, without box
# decisions (issue 19.2; docs/performance.md "Server CPU per request"): the row locked with only the columns the
# save uses and the trial's findings, in one statement whose WHERE holds the checks _locked_own_read makes; then
# one UPDATE. Anything else matches no row and takes the general path, which answers it as before.
_AUTOSAVE_LOCK_SQL = (
    "SELECT r.id, r.status, r.opened_at, r.last_heartbeat_at, r.active_seconds, t.findings "
    f'FROM "{Read._meta.db_table}" AS r JOIN "{Membership._meta.db_table}" AS m ON m.id = r.reader_id '
    f'JOIN "{Case._meta.db_table}" AS c ON c.id = r.case_id JOIN "{Trial._meta.db_table}" AS t ON t.id = c.trial_id '
    "WHERE r.public_id = %s AND r.opened_at IS NOT NULL AND r.submitted_at IS NULL AND m.user_id = %s "
    "AND m.role = %s AND t.status <> %s FOR UPDATE OF r"
)
_AUTOSAVE_UPDATE_SQL = (
    f'UPDATE "{Read._meta.db_table}" SET findings_text = %s, impression_text = %s, finding_marks = %s::jsonb, '
    "autosaved_at = %s, active_seconds = %s, last_heartbeat_at = %s, status = %s WHERE id = %s"
)


def _autosave_open_read(actor, public_id: str, data: dict, seconds) -> ReadState | None:
    """The common autosave in two statements (see above); None when the read is not an open one of the actor's."""
    with connection.cursor() as cur:
        cur.execute(_AUTOSAVE_LOCK_SQL, [public_id, getattr(actor, "pk", None), Role.READER, Trial.Status.LOCKED])
        row = cur.fetchone()
        if row is None:
            return None
        pk, status, opened_at, last_beat, active, findings = row
        findings = json.loads(findings) if isinstance(findings, str) else findings  # Django loads jsonb as text
        cleaned = clean_report_codes([f["code"] for f in findings], data, complete=False)
        now = timezone.now()
        clock = SimpleNamespace(opened_at=opened_at, last_heartbeat_at=last_beat, active_seconds=active)
        if seconds is not None:
            _credit_active_time(clock, clean_seconds(seconds), now)
        if status == Read.Status.TODO:
            status = Read.Status.IN_PROGRESS
        cur.execute(_AUTOSAVE_UPDATE_SQL, [cleaned["findings_text"], cleaned["impression_text"],
                                           json.dumps(cleaned["finding_marks"]), now, clock.active_seconds,
                                           clock.last_heartbeat_at, status, pk])
    return ReadState(status=status, active_seconds=clock.active_seconds or 0.0, is_submitted=False,
                     autosaved_at=now)


@transaction.atomic
def autosave(actor, read: Read | str, data, seconds=None) -> ReadState:
    """Save the report in progress (partial marks allowed). After submit it changes nothing and returns the
    submitted read (a late autosave from a closing tab is not an error). Not audited. ``read``: a Read or its
    public id (two queries once the read is open: the locked row, the update)."""
    if connection.vendor == "postgresql" and isinstance(data, dict) and "box_reviews" not in data:  # as heartbeat
        state = _autosave_open_read(actor, read if isinstance(read, str) else read.public_id, data, seconds)
        if state is not None:
            return state
    # The light lock unless the report carries box decisions (issue 21), which need the read's arm and draft.
    read = _locked_own_read(actor, read, light=not (isinstance(data, dict) and "box_reviews" in data))
    if read.is_submitted:
        return ReadState.of(read)
    cleaned = clean_report(read.case.trial, data, complete=False)
    if read.opened_at is None:
        _ensure_available(read)
    now = timezone.now()
    for k, v in cleaned.items():
        setattr(read, k, v)
    read.autosaved_at = now
    fields = ["findings_text", "impression_text", "finding_marks", "autosaved_at"]
    _apply_box_reviews(read, data, fields)
    if seconds is not None and read.opened_at is not None:
        _credit_active_time(read, clean_seconds(seconds), now)
        fields += ["active_seconds", "last_heartbeat_at"]
    if read.status == Read.Status.TODO:
        read.status = Read.Status.IN_PROGRESS
        fields.append("status")
    read.save(update_fields=fields)
    return ReadState.of(read)


def prefilled_choices(draft, codes: list[str]) -> dict[str, bool]:
    """The present/absent choice the draft pre-fills per finding: present at DRAFT_THRESHOLD or above (the same
    call draft_changes measures flips against); findings without a probability are left blank."""
    probs = draft.probabilities or {}
    return {c: float(probs[c]) >= DRAFT_THRESHOLD for c in codes if probs.get(c) is not None}


def draft_changes(draft, findings_text: str, impression_text: str, marks: dict, codes: list[str]):
    """How much the reader changed the draft: normalised edit distance (1 - difflib ratio) between the draft's
    report text and the final text, and the findings whose final mark differs from the draft's call at 0.5."""
    before = f"{draft.findings_text.strip()}\n{draft.impression_text.strip()}"
    after = f"{findings_text.strip()}\n{impression_text.strip()}"
    distance = 1.0 - SequenceMatcher(None, before, after, autojunk=False).ratio()
    flipped = []
    probs = draft.probabilities or {}
    for code in codes:
        p = probs.get(code)
        present = (marks.get(code) or {}).get("present")
        if p is None or present is None:
            continue
        if bool(float(p) >= DRAFT_THRESHOLD) != bool(present):
            flipped.append(code)
    return round(distance, 6), flipped


# What a reader's signature of a submission covers (Trial.sign_submissions; trial.signatures).
SIGNED_FIELDS = ("findings_text", "impression_text", "finding_marks", "submitted_at", "status", "reader_id")


def submit_read(actor, read: Read | str, data, seconds=None,
                signature: signatures.SignatureInput | None = None) -> tuple[Read, bool]:
    """Submit the report: stamps submitted_at, credits the last active seconds, measures the changes to the draft
    (AI arm), audits, and tells rating (rating.services.on_read_submitted). Idempotent: a second submit
    (double click, retry, two tabs) returns the saved read with created=False and changes nothing. Where the trial's
    `sign_submissions` is on, a new submission needs the reader's electronic signature (authorship): a wrong
    password is recorded before the transaction (trial.signatures.check_password_first)."""
    if signature is not None:
        row = (Read.objects.filter(pk=read.pk) if isinstance(read, Read) else Read.objects.filter(public_id=read))
        # Only the actor's own read: a wrong password on another's id is the unknown id's 404, not a 403 that
        # says the id exists (tests/security/test_probe_parity.py).
        row = row.filter(reader__user_id=getattr(actor, "pk", None), reader__role=Role.READER)
        info = row.values("case__trial_id", "case__trial__sign_submissions", "submitted_at").first()
        if info and info["case__trial__sign_submissions"] and info["submitted_at"] is None:
            trial = Trial.objects.get(pk=info["case__trial_id"])
            signatures.check_password_first(actor, trial, signature, action="read:submit",
                                            obj=read if isinstance(read, Read) else None)
    return _submit_read(actor, read, data, seconds=seconds, signature=signature)


@transaction.atomic
def _submit_read(actor, read: Read | str, data, *, seconds, signature) -> tuple[Read, bool]:
    read = _locked_own_read(actor, read)
    if read.is_submitted:
        return read, False
    trial = read.case.trial
    hold_unlocked(trial)  # not locked until this submit is stored (a submit in flight at the lock)
    cleaned = clean_report(trial, data, complete=True)
    if trial.sign_submissions:
        signatures.reauthenticate(actor, signature)
    if read.opened_at is None:  # submitted through the API without an open: it opens now
        _ensure_available(read)
        read = open_read(actor, read)
        read = Read.objects.select_for_update(of=("self",)).select_related(
            "case", "case__trial", "arm", "arm__model_assignment__model_version", "reader", "draft").get(pk=read.pk)
    now = timezone.now()
    before = audit.snapshot(read)
    for k, v in cleaned.items():
        setattr(read, k, v)
    _apply_box_reviews(read, data, [])
    if seconds is not None:
        _credit_active_time(read, clean_seconds(seconds), now)
    read.submitted_at = now
    read.status = Read.Status.DONE
    if read.arm.is_ai and read.draft_id and not read.draft.is_withheld:  # a withheld draft was never shown
        read.draft_edit_distance, read.flipped_findings = draft_changes(
            read.draft, read.findings_text, read.impression_text, read.finding_marks, trial.finding_codes
        )
    read.save()
    entry = audit.record(actor=actor, trial=trial, action="read:submit", obj=read, before=before,
                         after=audit.snapshot(read))
    if trial.sign_submissions:
        signatures.sign_entry(actor, entry, signatures.SignatureInput(signature.password, Meaning.AUTHORSHIP),
                              obj=read, fields=SIGNED_FIELDS)
    signals.read_submitted.send(sender=Read, read=read)  # rating tasks once both reads of a case are in
    return read, True


REPORT_FIELDS = ("findings_text", "impression_text", "finding_marks")
REASON_MAX = 2_000


def _report_of(read: Read) -> dict:
    return {k: getattr(read, k) for k in REPORT_FIELDS}


@transaction.atomic
def amend_read(*, actor, read: Read | str, report, reason: str) -> tuple[ReadAmendment, bool]:
    """Amend a submitted read (issue 18 item 2): its reader, or a coordinator of the trial, while the trial is not
    locked, always with a reason. The read keeps its first submission (what the analysis counts by default,
    docs/primary_analysis.md); the amendment stores the version before and after and is audited with both.
    A repeat of the latest amendment (same report, same reason: a double click or retry) returns it with
    created=False; a report identical to the current version is otherwise refused (nothing to amend)."""
    rows = Read.objects.select_for_update(of=("self",)).select_related("case", "case__trial", "reader")
    locked = _first_writable(rows, read)
    trial = locked.case.trial
    hold_unlocked(trial)  # not locked until this amendment is stored
    own = locked.reader is not None and locked.reader.user_id == getattr(actor, "pk", None) \
        and locked.reader.role == Role.READER
    if not own and not has_role(actor, trial, Role.COORDINATOR):
        raise Http404("No such read.")  # as an unknown id (reading.selectors.read_for_amendment)
    if not locked.is_submitted:
        raise Conflict("Only a submitted read can be amended; until then, edit and submit it.", code="not_submitted")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Give the reason for the amendment.")
    require_storable_text(reason, "reason")  # a NUL is a 400, not a database error
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"The reason is longer than {REASON_MAX} characters.")
    cleaned = clean_report(trial, report, complete=True)
    latest = locked.amendments.order_by("-number").first()
    current = latest.amended if latest else _report_of(locked)
    if cleaned == current:
        if latest and latest.reason == reason and latest.amended_by_id == actor.pk:
            return latest, False
        raise Conflict("The amended report is the same as the current version: nothing to amend.", code="no_change")
    with audit.history_context(actor=actor, reason=reason):  # the row history says who and why
        amendment = ReadAmendment.objects.create(
            read=locked, number=(latest.number + 1) if latest else 1, amended_by=actor,
            amended_as=Role.READER if own else Role.COORDINATOR, reason=reason, previous=current, amended=cleaned)
    audit.record(actor=actor, trial=trial, action="read:amend", obj=locked, before=current,
                 after={**cleaned, "amendment": amendment.number}, reason=reason)
    return amendment, True
