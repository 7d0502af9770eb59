"""Writes to trial data. Each public function is one transaction, checks the actor's role and the trial's
lock, and records what it changed in the audit log."""
from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.compiled import CompiledQuery
from core.errors import Conflict, ErrorCode, InvalidInput, NotAllowed, TrialLocked

from . import audit, selectors, signals, signatures
from .import_settings import parse_import_settings

__all__ = ["Conflict", "InvalidInput", "NotAllowed", "TrialLocked"]
from .models import (
    AllocationList,
    AllocationSlot,
    AllocationStratum,
    Arm,
    AuditHead,
    Case,
    Center,
    Membership,
    Trial,
    default_findings,
)
from .permissions import Role, can_create_trials, has_role, role_conflict
from .randomisation import (
    default_block_sizes,
    generate_stratum,
    list_commitment,
    new_salt,
    sealed_seed,
    validate_blocks,
)

User = get_user_model()

STATUS_ORDER = [s.value for s in Trial.Status]
SIGNED_STEPS = signatures.SIGNED_STEPS
# A slug that cannot start a spreadsheet formula (issue 14: case codes reach CSV exports).
CASE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
TRIAL_SETTINGS = (
    "title",
    "expert_panel_size",
    "preference_majority",
    "experts_off_own_center",
    "washout_days",
    "overdue_after_days",
    "allowed_modalities",
    "date_policy",
    "import_settings",
    "keep_identity_key",
    "allow_retrieval_baseline",
    "ask_blinding_guess",
    "ood_action",
    "ood_threshold",
    "prefill_draft_findings",
    "require_signatures",
    "sign_submissions",
    "similar_cases_k",
    "similar_cases_encoder",
    "similar_cases_weights",
)
SIMILAR_CASES_MAX = 10


# -- guards -------------------------------------------------------------------------------------------------
_STATUS = CompiledQuery(lambda *, pk: Trial.objects.filter(pk=pk).values_list("status"), kind="first",
                        params={"pk": int})


def ensure_writable(trial: Trial, *, loaded: bool = False) -> None:
    """Locked trials are read-only for everyone; checked against the database row, not a cached object.
    ``loaded``: ``trial`` was read from its row in the caller's transaction, just now (with a locked row that
    refers to it): its status is the row's."""
    status = trial.status if loaded else _STATUS(pk=trial.pk)
    if status == Trial.Status.LOCKED:
        raise TrialLocked(f"Trial {trial.code} is locked: its data is read-only.")


_HOLD_UNLOCKED_SQL = f'SELECT status FROM "{Trial._meta.db_table}" WHERE id = %s FOR SHARE'


def hold_unlocked(trial: Trial | int) -> None:
    """In the transaction of a write to a submitted record (a submit, an amendment): refuse if the trial is locked,
    and keep it from locking until this transaction ends. FOR SHARE on the trial's row conflicts with the lock
    step's FOR NO KEY UPDATE (_lock_trial_row), so the step waits for a submit in flight (and counts it), and a
    submit begun after the step waits for it and reads "locked". Before, a submit that had read the status and
    then waited (on its audit chain, its case) was stored after the lock, its time before locked_at
    (tests/security/test_insider_concurrency.py). On SQLite (the demo) one writer at a time: the status is read."""
    trial_id = trial if isinstance(trial, int) else trial.pk
    if connection.vendor != "postgresql":
        status = Trial.objects.filter(pk=trial_id).values_list("status", flat=True).first()
    else:
        with connection.cursor() as cur:
            cur.execute(_HOLD_UNLOCKED_SQL, [trial_id])
            row = cur.fetchone()
        status = row[0] if row else None
    if status == Trial.Status.LOCKED:
        code = trial.code if isinstance(trial, Trial) else Trial.objects.filter(pk=trial_id).values_list(
            "code", flat=True).first()
        raise TrialLocked(f"Trial {code} is locked: its data is read-only.")


def ensure_coordinator(actor, trial: Trial) -> None:
    if actor is not None and not has_role(actor, trial, Role.COORDINATOR):
        raise NotAllowed("Only the trial's coordinators may do this.")


def _lock_trial_row(trial: Trial) -> Trial:
    # NO KEY UPDATE: serialises changes of the trial without blocking inserts that merely reference it (every
    # audit entry does), which a plain FOR UPDATE would hold up trial-wide.
    locked = Trial.objects.select_for_update(no_key=True).get(pk=trial.pk)
    if locked.status == Trial.Status.LOCKED:
        raise TrialLocked(f"Trial {trial.code} is locked: its data is read-only.")
    return locked


def validate_findings(findings: Iterable[dict]) -> list[dict]:
    out, seen = [], set()
    for f in findings:
        code = str(f.get("code", "")).strip()
        label = str(f.get("label", "")).strip() or code.replace("_", " ").capitalize()
        if not code or not code.replace("_", "").isalnum() or code != code.lower():
            raise InvalidInput(f"Finding code {code!r} must be lower-case letters, digits and underscores.")
        if code in seen:
            raise InvalidInput(f"Finding {code!r} is listed twice.")
        seen.add(code)
        out.append({"code": code, "label": label})
    if not out:
        raise InvalidInput("A trial needs at least one finding.")
    return out


# -- trial setup ---------------------------------------------------------------------------------------------
@transaction.atomic
def create_trial(
    actor, *, code: str, title: str, design: str = Trial.Design.PAIRED_BY_CASE, findings=None, **settings
) -> Trial:
    if actor is not None and not can_create_trials(actor):
        raise NotAllowed("You may not create trials.")
    if design not in Trial.Design.values:
        raise InvalidInput(f"Unknown design {design!r}; choose one of {', '.join(Trial.Design.values)}.")
    if not code or not title:
        raise InvalidInput("A trial needs a protocol code and a title.")
    unknown = set(settings) - set(TRIAL_SETTINGS)
    if unknown:
        raise InvalidInput(f"Unknown trial settings: {', '.join(sorted(unknown))}.")
    if Trial.objects.filter(code=code).exists():
        raise Conflict(f"A trial with code {code} already exists.")
    trial = Trial(code=code, title=title, design=design, findings=validate_findings(findings or default_findings()))
    for k, v in settings.items():
        setattr(trial, k, v)
    _validate_settings(trial)
    try:
        with transaction.atomic():
            trial.save()
    except IntegrityError as exc:
        raise Conflict(f"A trial with code {code} already exists.") from exc
    head = AuditHead(trial=trial, chain=audit.chain_name(trial))
    audit.sign_head(head)
    head.save()
    audit.record(actor=actor, trial=trial, action="create", obj=trial, after=audit.snapshot(trial))
    if actor is not None:
        m = Membership.objects.create(user=actor, trial=trial, role=Role.COORDINATOR)
        audit.record(actor=actor, trial=trial, action="create", obj=m, after=audit.snapshot(m))
        actor.__dict__.pop("_trial_roles_cache", None)
    return trial


def _validate_settings(trial: Trial) -> None:
    if trial.expert_panel_size < 1:
        raise InvalidInput("The expert panel needs at least one expert.")
    if not (1 <= trial.preference_majority <= trial.expert_panel_size):
        raise InvalidInput("The preference majority must be between 1 and the panel size.")
    if trial.overdue_after_days < 1:
        raise InvalidInput("Overdue after needs at least one day.")
    if trial.date_policy not in ("shift", "remove"):
        raise InvalidInput("Date policy must be 'shift' or 'remove'.")
    if trial.ood_action not in ("mark", "withhold"):
        raise InvalidInput("The out-of-distribution action must be 'mark' or 'withhold'.")
    try:
        trial.ood_threshold = float(trial.ood_threshold)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("The out-of-distribution threshold must be a number.") from exc
    if not 0 < trial.ood_threshold < 100:
        raise InvalidInput("The out-of-distribution threshold must be above 0 (1.0 = each check's cut-off).")
    _validate_similar_cases(trial)
    try:
        trial.import_settings = parse_import_settings(trial.import_settings).as_json()
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def _validate_similar_cases(trial: Trial) -> None:
    if isinstance(trial.similar_cases_k, bool) or not isinstance(trial.similar_cases_k, int) \
            or not 0 <= trial.similar_cases_k <= SIMILAR_CASES_MAX:
        raise InvalidInput(f"Similar cases: a whole number from 0 (off) to {SIMILAR_CASES_MAX}.")
    if trial.similar_cases_encoder not in ("image", "xrv_densenet"):
        raise InvalidInput("The similar-cases encoder must be 'image' or 'xrv_densenet'.")
    if trial.similar_cases_encoder == "xrv_densenet" and not (trial.similar_cases_weights or "").strip():
        raise InvalidInput("The xrv_densenet encoder needs the path of its local weights.")


@transaction.atomic
def update_trial_settings(actor, trial: Trial, reason: str = "", **changes) -> Trial:
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)
    if trial.status != Trial.Status.SETUP and not reason.strip():
        # ICH E6(R3) 4.2.2 / Annex 11 s9: once enrolment has started, every setup change carries its reason.
        raise InvalidInput("Changing a setting once enrolment has started needs a reason.")
    unknown = set(changes) - set(TRIAL_SETTINGS) - {"findings"}
    if unknown:
        raise InvalidInput(f"Unknown trial settings: {', '.join(sorted(unknown))}.")
    if "findings" in changes:
        if trial.status != Trial.Status.SETUP:
            raise Conflict("Findings can only be changed during setup.")
        changes["findings"] = validate_findings(changes["findings"])
    before = audit.snapshot(trial)
    for k, v in changes.items():
        setattr(trial, k, v)
    _validate_settings(trial)
    experts = trial.memberships.filter(role=Role.EXPERT).count()
    if "expert_panel_size" in changes and experts and trial.expert_panel_size > experts:
        raise InvalidInput(f"The expert panel ({trial.expert_panel_size}) cannot be larger than the trial's "
                           f"{experts} expert(s); add experts first.")
    with audit.history_context(actor=actor, reason=reason):
        trial.save()
    audit.record(actor=actor, trial=trial, action="update", obj=trial, before=before, after=audit.snapshot(trial),
                 reason=reason)
    return trial


@transaction.atomic
def add_center(actor, trial: Trial, *, code: str, name: str) -> Center:
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)
    if not code or not name:
        raise InvalidInput("A center needs a code and a name.")
    if not CASE_CODE.fullmatch(code) or len(code) > 40:
        raise InvalidInput(f"Center code {code[:60]!r} must be letters, digits, '-' and '_' (imported case codes "
                           "start with it).")
    if trial.centers.filter(code=code).exists():
        raise Conflict(f"Center {code} already exists in this trial.")
    if hasattr(trial, "allocation_list"):
        raise Conflict("The allocation list is sealed; centers can no longer be added (they are strata).")
    center = Center.objects.create(trial=trial, code=code, name=name)
    audit.record(actor=actor, trial=trial, action="create", obj=center, after=audit.snapshot(center))
    return center


@transaction.atomic
def add_arm(
    actor, trial: Trial, *, code: str, name: str, is_ai: bool = False, model_version=None, ratio: int = 1
) -> Arm:
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)
    if trial.status != Trial.Status.SETUP or hasattr(trial, "allocation_list"):
        raise Conflict("Arms can only be added during setup, before the allocation list is generated.")
    if not code or not name:
        raise InvalidInput("An arm needs a code and a name.")
    if ratio < 1:
        raise InvalidInput("The allocation ratio must be at least 1.")
    if trial.arms.filter(code=code).exists():
        raise Conflict(f"Arm {code} already exists in this trial.")
    if model_version is not None and not is_ai:
        raise InvalidInput("Only an AI arm has a model version.")
    arm = Arm.objects.create(trial=trial, code=code, name=name, is_ai=is_ai, ratio=ratio)
    if is_ai:
        _announce_ai_arm(actor, arm, model_version)
    audit.record(actor=actor, trial=trial, action="create", obj=arm, after=audit.snapshot(arm))
    return arm


@transaction.atomic
def add_member(
    actor, trial: Trial, *, user, role: str, center: Center | None = None, experience: str = ""
) -> Membership:
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)  # serialises membership changes: role exclusivity holds under concurrency
    if role not in Role.values:
        raise InvalidInput(f"Unknown role {role!r}.")
    if center is not None and center.trial_id != trial.pk:
        raise InvalidInput("That center belongs to another trial.")
    if role == Role.READER and center is None:
        raise InvalidInput("A reader needs a center.")
    if role == Role.READER and experience not in ("junior", "senior"):
        raise InvalidInput("A reader's experience must be junior or senior.")
    if role != Role.READER:
        experience = ""
    existing = set(Membership.objects.filter(trial=trial, user=user).values_list("role", flat=True))
    if role in existing:
        raise Conflict(f"{user.username} is already a {role} in this trial.")
    conflict = role_conflict(existing, role)
    if conflict:
        raise Conflict(conflict)
    m = Membership.objects.create(user=user, trial=trial, role=role, center=center, experience=experience)
    audit.record(actor=actor, trial=trial, action="create", obj=m, after=audit.snapshot(m))
    user.__dict__.pop("_trial_roles_cache", None)
    if role == Role.EXPERT:
        signals.expert_joined.send(sender=Trial, trial=trial)  # fills panels that came out short
    audit.open_chain(trial, user)  # last: it takes the trial's chain, which a top-up takes only after case rows
    return m


@transaction.atomic
def add_member_by_username(
    actor, trial: Trial, *, username: str, role: str, center: Center | None = None, experience: str = "",
    email: str = "", password: str = "",
) -> Membership:
    """Adds a person, creating the user if new; a refusal leaves no user behind (one transaction)."""
    ensure_coordinator(actor, trial)
    user = get_or_create_user(username, email=email, password=password or None)
    return add_member(actor, trial, user=user, role=role, center=center, experience=experience or "")


@transaction.atomic
def remove_member(actor, membership: Membership, reason: str) -> None:
    trial = membership.trial
    ensure_coordinator(actor, trial)
    _lock_trial_row(trial)
    if membership.enrolled_at:
        raise Conflict("An enrolled reader cannot be removed; their allocation is on record.")
    if not reason:
        raise InvalidInput("Removing a member needs a reason.")
    before = audit.snapshot(membership)
    pk = membership.pk
    with audit.history_context(actor=actor, reason=reason):
        membership.delete()
    audit.record(actor=actor, trial=trial, action="delete", object_type="trial.Membership", object_id=str(pk),
                 before=before, reason=reason)


# -- editing setup (issue 17): centers, arms and people change only while the trial is in setup ----------------
def _ensure_setup(trial: Trial, what: str) -> None:
    """``trial`` is the locked row. Refuses with a message that says why and what to do instead."""
    if trial.status != Trial.Status.SETUP:
        raise Conflict(f"{what} can only be changed while the trial is in setup; this trial is "
                       f"{trial.get_status_display().lower()}, so the change would alter data already collected.",
                       code=ErrorCode.NOT_IN_SETUP)


def _ensure_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"{what} needs a reason (it goes into the audit log).")
    return reason


def _ensure_unsealed(trial: Trial, what: str) -> None:
    if hasattr(trial, "allocation_list"):
        raise Conflict(f"The allocation list is sealed: {what} can no longer be changed (the list was drawn for "
                       "them).", code=ErrorCode.NOT_IN_SETUP)


def _audited_save(actor, trial: Trial, obj, before: dict, reason: str, fields: list[str]) -> None:
    with audit.history_context(actor=actor, reason=reason):
        obj.save(update_fields=fields)
    audit.record(actor=actor, trial=trial, action="update", obj=obj, before=before, after=audit.snapshot(obj),
                 reason=reason)


def _audited_delete(actor, trial: Trial, obj, reason: str) -> None:
    before, pk, label = audit.snapshot(obj), obj.pk, obj._meta.label
    with audit.history_context(actor=actor, reason=reason):
        obj.delete()
    audit.record(actor=actor, trial=trial, action="delete", object_type=label, object_id=str(pk), before=before,
                 reason=reason)


def _setup_change(actor, obj, *, what: str, change: str, reason: str, unsealed: str = ""):
    """The preamble of every setup edit of a center, arm or person, in this order: the actor is a coordinator, the
    trial row is locked and still in setup, a reason is given (``change`` names the edit in the message), the list is
    unsealed when ``unsealed`` names what it would alter, and ``obj`` is re-read under a row lock.
    Returns ``(locked trial, locked obj, stripped reason)``."""
    trial = obj.trial
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)
    _ensure_setup(trial, what)
    reason = _ensure_reason(reason, change)
    if unsealed:
        _ensure_unsealed(trial, unsealed)
    obj = type(obj).objects.select_for_update().get(pk=obj.pk, trial=trial)
    return trial, obj, reason


@transaction.atomic
def update_center(actor, center: Center, *, name: str, code: str | None = None, reason: str) -> Center:
    """Rename a center (and change its code while no case or person refers to it and the list is not sealed)."""
    trial, center, reason = _setup_change(actor, center, what="Centers", change="Changing a center", reason=reason)
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A center needs a name.")
    code = center.code if code is None else (code or "").strip()
    if code != center.code:
        if not CASE_CODE.fullmatch(code) or len(code) > 40:
            raise InvalidInput(f"Center code {code[:60]!r} must be letters, digits, '-' and '_'.")
        _ensure_unsealed(trial, "center codes")
        if center.cases.exists() or center.memberships.exists():
            raise Conflict(f"Center {center.code} has cases or people: its code stays (case codes start with it).")
        if trial.centers.filter(code=code).exclude(pk=center.pk).exists():
            raise Conflict(f"Center {code} already exists in this trial.")
    before = audit.snapshot(center)
    center.name, center.code = name, code
    _audited_save(actor, trial, center, before, reason, ["name", "code"])
    return center


@transaction.atomic
def remove_center(actor, center: Center, *, reason: str) -> None:
    trial, center, reason = _setup_change(actor, center, what="Centers", change="Removing a center", reason=reason,
                                          unsealed="centers")
    if center.cases.exists() or center.memberships.exists():
        raise Conflict(f"Center {center.code} still has cases or people: remove or move them first.")
    _audited_delete(actor, trial, center, reason)


@transaction.atomic
def update_arm(actor, arm: Arm, *, name: str, ratio: int, reason: str) -> Arm:
    """Rename an arm or change its allocation ratio, before the list is sealed. Whether an arm is an AI arm does
    not change: remove it and add it again."""
    trial, arm, reason = _setup_change(actor, arm, what="Arms", change="Changing an arm", reason=reason)
    name = (name or "").strip()
    if not name:
        raise InvalidInput("An arm needs a name.")
    if not isinstance(ratio, int) or ratio < 1:
        raise InvalidInput("The allocation ratio must be at least 1.")
    if ratio != arm.ratio:
        _ensure_unsealed(trial, "allocation ratios")
    before = audit.snapshot(arm)
    arm.name, arm.ratio = name, ratio
    _audited_save(actor, trial, arm, before, reason, ["name", "ratio"])
    return arm


@transaction.atomic
def remove_arm(actor, arm: Arm, *, reason: str) -> None:
    trial, arm, reason = _setup_change(actor, arm, what="Arms", change="Removing an arm", reason=reason,
                                       unsealed="arms")
    if arm.readers.exists() or arm.allocated_cases.exists():
        raise Conflict(f"Arm {arm.code} has readers or cases allocated to it.")
    if arm.is_ai:  # inference removes its record of the arm's model version first (it protects the arm row)
        signals.ai_arm_removed.send(sender=Arm, arm=arm, actor=actor, reason=reason)
    _audited_delete(actor, trial, arm, reason)


@transaction.atomic
def update_member(actor, membership: Membership, *, center: Center | None, experience: str = "",
                  reason: str) -> Membership:
    """Move a person to another center or change a reader's experience. A role changes by removing the person
    and adding them again."""
    trial, membership, reason = _setup_change(actor, membership, what="People", change="Changing a person",
                                              reason=reason)
    if center is not None and center.trial_id != trial.pk:
        raise InvalidInput("That center belongs to another trial.")
    if membership.enrolled_at:
        raise Conflict("An enrolled reader cannot be changed; their allocation is on record.")
    if membership.role == Role.READER:
        if center is None:
            raise InvalidInput("A reader needs a center.")
        if experience not in ("junior", "senior"):
            raise InvalidInput("A reader's experience must be junior or senior.")
    else:
        experience = ""
    before = audit.snapshot(membership)
    membership.center, membership.experience = center, experience
    _audited_save(actor, trial, membership, before, reason, ["center", "experience"])
    return membership


def get_or_create_user(
    username: str, *, email: str = "", password: str | None = None, first_name: str = "", last_name: str = ""
):
    user, created = User.objects.get_or_create(
        username=username, defaults={"email": email, "first_name": first_name, "last_name": last_name}
    )
    if created:
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    return user


@transaction.atomic
def add_case(actor, trial: Trial, *, center: Center, code: str) -> Case:
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)
    if center.trial_id != trial.pk:
        raise InvalidInput("That center belongs to another trial.")
    code = (code or "").strip()
    if not code:
        raise InvalidInput("A case needs a code.")
    if not CASE_CODE.fullmatch(code):
        raise InvalidInput(f"Case code {code[:60]!r} must be letters, digits, '-' and '_', starting with a letter "
                           "or digit (at most 64 characters).")
    if trial.cases.filter(code=code).exists():
        raise Conflict(f"Case {code} already exists in this trial.")
    case = Case.objects.create(trial=trial, center=center, code=code)
    audit.record(actor=actor, trial=trial, action="create", obj=case, after=audit.snapshot(case))
    return case


# -- status workflow -----------------------------------------------------------------------------------------
def _requires_signatures(trial: Trial) -> bool:
    return bool(Trial.objects.filter(pk=trial.pk).values_list("require_signatures", flat=True).first())


def advance_status(actor, trial: Trial, to_status: str, reason: str = "",
                   signature: signatures.SignatureInput | None = None) -> Trial:
    """One step forward. Moving to rating or to locked in a trial that requires signatures needs the coordinator's
    electronic signature (password re-entered), bound to the audit entry of the step. A step that leaves work
    outstanding (`selectors.outstanding_work`) needs a reason; the counts go into the entry's `after`. A wrong
    password is recorded before the step's transaction (trial.signatures.check_password_first)."""
    ensure_coordinator(actor, trial)
    if to_status in SIGNED_STEPS and _requires_signatures(trial):
        signatures.check_password_first(actor, trial, signature, action=f"status:{to_status}", obj=trial)
    return _advance_status(actor, trial, to_status, reason=reason, signature=signature)


@transaction.atomic
def _advance_status(actor, trial: Trial, to_status: str, *, reason: str,
                    signature: signatures.SignatureInput | None) -> Trial:
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)
    signed = trial.require_signatures and to_status in SIGNED_STEPS
    if signed:
        signatures.reauthenticate(actor, signature)
    if to_status not in STATUS_ORDER:
        raise InvalidInput(f"Unknown status {to_status!r}.")
    current, target = STATUS_ORDER.index(trial.status), STATUS_ORDER.index(to_status)
    if target != current + 1:
        raise Conflict(f"A trial moves one step forward at a time: {trial.status} -> {STATUS_ORDER[current + 1]}.")
    if to_status == Trial.Status.ENROLLING:
        if not hasattr(trial, "allocation_list"):
            raise Conflict("Generate the allocation list before enrolment starts.")
    reason = (reason or "").strip()
    if to_status == Trial.Status.LOCKED and not reason:
        raise InvalidInput("Locking a trial needs a reason.")
    # Counted here, under the trial's row lock, not taken from the confirmation page: work done or added since the
    # coordinator looked is what the audit entry must list (issue 17).
    outstanding = selectors.outstanding_work(trial, to_status)
    if outstanding and not reason:
        raise Conflict(f"Moving to {to_status} leaves work outstanding: "
                       f"{'; '.join(o.message for o in outstanding)}. Give a reason to go ahead.",
                       code=ErrorCode.OUTSTANDING_WORK)
    before = audit.snapshot(trial)
    trial.status = to_status
    if to_status == Trial.Status.LOCKED:
        trial.locked_at = timezone.now()
    with audit.history_context(actor=actor, reason=reason):
        trial.save(update_fields=["status", "locked_at"])
    after = audit.snapshot(trial)
    if outstanding:
        after["outstanding"] = {o.code: o.count for o in outstanding}
    entry = audit.record(actor=actor, trial=trial, action=f"status:{to_status}", obj=trial, before=before,
                         after=after, reason=reason)
    if signed:
        signatures.sign_entry(actor, entry, signature)
    if to_status == Trial.Status.LOCKED:
        _disclose_allocation_list(actor, trial)
    return trial


def lock_trial(actor, trial: Trial, reason: str, signature: signatures.SignatureInput | None = None) -> Trial:
    """Locks from any status before lock, one audited (and, where the trial requires it, signed) step at a time."""
    trial.refresh_from_db()
    while trial.status != Trial.Status.LOCKED:
        nxt = STATUS_ORDER[STATUS_ORDER.index(trial.status) + 1]
        trial = advance_status(actor, trial, nxt, reason=reason if nxt == Trial.Status.LOCKED else f"lock: {reason}",
                               signature=signature)
    return trial


# -- randomisation -------------------------------------------------------------------------------------------
def strata_keys(trial: Trial, stratify_by_experience: bool) -> list[str]:
    centers = list(trial.centers.values_list("code", flat=True))
    if not centers:
        raise Conflict("Add at least one center before generating the allocation list (centers are strata).")
    if stratify_by_experience and trial.randomisation_unit == "reader":
        return [f"{c}|{e}" for c in centers for e in ("junior", "senior")]
    return centers


def stratum_key_for_case(case: Case) -> str:
    return case.center.code


def stratum_key_for_reader(m: Membership, stratify_by_experience: bool) -> str:
    return f"{m.center.code}|{m.experience}" if stratify_by_experience else m.center.code


# What a signature on sealing covers: the commitment and the public settings (never the seed, salt or blocks).
SEALED_FIELDS = ("unit", "ratio", "slots_per_stratum", "stratify_by_experience", "list_hash", "created_by_id")


def generate_allocation_list(
    actor,
    trial: Trial,
    *,
    seed: str | None = None,
    block_sizes: list[int] | None = None,
    slots_per_stratum: int | None = None,
    stratify_by_experience: bool = False,
    signature: signatures.SignatureInput | None = None,
) -> AllocationList:
    """Generate and seal the allocation list. In a trial that requires signatures, sealing needs the coordinator's
    electronic signature (approval), bound to the audit entry and to the list's commitment (SEALED_FIELDS)."""
    ensure_coordinator(actor, trial)
    if _requires_signatures(trial):
        signatures.check_password_first(actor, trial, signature, action="allocation_list:generate")
    return _generate_allocation_list(actor, trial, seed=seed, block_sizes=block_sizes,
                                     slots_per_stratum=slots_per_stratum,
                                     stratify_by_experience=stratify_by_experience, signature=signature)


@transaction.atomic
def _generate_allocation_list(actor, trial: Trial, *, seed, block_sizes, slots_per_stratum, stratify_by_experience,
                              signature) -> AllocationList:
    ensure_coordinator(actor, trial)
    trial = _lock_trial_row(trial)
    if trial.require_signatures:
        signatures.reauthenticate(actor, signature)
    if trial.status != Trial.Status.SETUP:
        raise Conflict("The allocation list is generated during setup.")
    if AllocationList.objects.filter(trial=trial).exists():
        raise Conflict("This trial's allocation list is already generated and sealed.")
    arms = {a.code: a for a in trial.arms.all()}
    ratio = {code: arm.ratio for code, arm in arms.items()}
    block_sizes = list(block_sizes or default_block_sizes(ratio))
    try:
        validate_blocks(ratio, block_sizes)
        # A protocol seed (often a date) is joined to a secret random part; see trial.randomisation.
        seed = sealed_seed(None if seed is None else str(seed))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    unit = trial.randomisation_unit
    n = slots_per_stratum or (2000 if unit == "case" else 100)
    if n < 1 or n > 100_000:
        raise InvalidInput("Slots per stratum must be between 1 and 100000.")
    salt = new_salt()
    keys = strata_keys(trial, stratify_by_experience)
    strata = {k: generate_stratum(seed, k, ratio, block_sizes, n) for k in keys}
    alist = AllocationList.objects.create(
        trial=trial,
        unit=unit,
        seed=seed,
        salt=salt,
        block_sizes=block_sizes,
        ratio=ratio,
        stratify_by_experience=stratify_by_experience,
        slots_per_stratum=n,
        list_hash=list_commitment(salt, seed, strata),
        created_by=actor,
    )
    for key, slots in strata.items():
        stratum = AllocationStratum.objects.create(allocation_list=alist, key=key, size=len(slots))
        AllocationSlot.objects.bulk_create(
            AllocationSlot(stratum=stratum, sequence=s.sequence, block_index=s.block_index, block_size=s.block_size,
                           arm=arms[s.arm])
            for s in slots
        )
    # The audit entry records the commitment and the public settings, never the seed, salt, block sizes or entries
    # (they are recorded when the lock discloses them: _disclose_allocation_list).
    entry = audit.record(
        actor=actor,
        trial=trial,
        action="allocation_list:generate",
        obj=alist,
        after={"unit": unit, "ratio": ratio, "strata": keys, "slots_per_stratum": n,
               "stratify_by_experience": stratify_by_experience, "list_hash": alist.list_hash},
    )
    if trial.require_signatures:
        signatures.sign_entry(actor, entry, signature, obj=alist, fields=SEALED_FIELDS)
    return alist


def _disclose_allocation_list(actor, trial: Trial) -> None:
    """At lock: seed, salt and block sizes go on record (coordinator and statistician may now read them and run
    `verify_allocation`)."""
    alist = AllocationList.objects.filter(trial=trial).first()
    if alist is None:
        return
    audit.record(actor=actor, trial=trial, action="allocation_list:disclose", obj=alist,
                 after={"scheme": alist.scheme, "seed": alist.seed, "salt": alist.salt,
                        "block_sizes": alist.block_sizes, "list_hash": alist.list_hash})


def _reveal_next(trial: Trial, key: str, actor) -> AllocationSlot:
    """Lock the stratum's pointer row, take its next slot. The row lock makes concurrent enrolments queue."""
    try:
        stratum = AllocationStratum.objects.select_for_update().get(allocation_list__trial=trial, key=key)
    except AllocationStratum.DoesNotExist as exc:
        raise Conflict(f"No allocation stratum {key!r} in the sealed list.") from exc
    if stratum.next_sequence >= stratum.size:
        raise Conflict(f"The allocation list for stratum {key} is exhausted ({stratum.size} slots).")
    slot = AllocationSlot.objects.select_related("arm").get(stratum=stratum, sequence=stratum.next_sequence)
    slot.revealed_at = timezone.now()
    slot.revealed_by = actor if getattr(actor, "pk", None) else None
    stratum.next_sequence += 1
    stratum.save(update_fields=["next_sequence"])
    return slot


def _ensure_enrolment_open(trial: Trial) -> None:
    if trial.status not in (Trial.Status.ENROLLING, Trial.Status.READING):
        raise Conflict(f"Enrolment is closed while the trial is in {trial.get_status_display().lower()}.",
                       code=ErrorCode.ENROLMENT_CLOSED)


@transaction.atomic
def enrol_reader(actor, membership: Membership) -> Membership:
    trial = membership.trial
    ensure_coordinator(actor, trial)
    trial = Trial.objects.get(pk=trial.pk)
    ensure_writable(trial)
    _ensure_enrolment_open(trial)
    m = Membership.objects.select_for_update(of=("self",)).select_related("center").get(pk=membership.pk)
    if m.role != Role.READER:
        raise InvalidInput("Only readers are enrolled and allocated.")
    if m.enrolled_at:
        raise Conflict(f"{m.user.username} is already enrolled.")
    if trial.randomisation_unit != "reader":
        before = audit.snapshot(m)
        m.enrolled_at = timezone.now()
        m.save(update_fields=["enrolled_at"])
        audit.record(actor=actor, trial=trial, action="enrol", obj=m, before=before, after=audit.snapshot(m))
        signals.reader_enrolled.send(sender=Membership, membership=m, actor=actor)
        return m
    alist = trial.allocation_list
    slot = _reveal_next(trial, stratum_key_for_reader(m, alist.stratify_by_experience), actor)
    slot.membership = m
    slot.save(update_fields=["revealed_at", "revealed_by", "membership"])
    before = audit.snapshot(m)
    m.arm = slot.arm
    m.enrolled_at = slot.revealed_at
    m.save(update_fields=["arm", "enrolled_at"])
    audit.record(actor=actor, trial=trial, action="enrol", obj=m, before=before, after=audit.snapshot(m))
    signals.reader_enrolled.send(sender=Membership, membership=m, actor=actor)
    return m


@transaction.atomic
def enrol_case(actor, case: Case) -> Case:
    trial = case.trial
    ensure_coordinator(actor, trial)
    trial = Trial.objects.get(pk=trial.pk)
    ensure_writable(trial)
    _ensure_enrolment_open(trial)
    case = Case.objects.select_for_update(of=("self",)).select_related("center", "trial").get(pk=case.pk)
    if case.enrolled_at:
        raise Conflict(f"Case {case.code} is already enrolled.")
    if case.status == Case.Status.EXCLUDED:
        raise Conflict(f"Case {case.code} is excluded.")
    if case.library:
        raise Conflict(f"Case {case.code} is in the reference library: library cases are shown as similar cases, "
                       "never read.")
    if case.needs_review:
        raise Conflict(f"Case {case.code} needs review before enrolment ({case.review_reason}): confirm or "
                       "exclude it on the trial page.", code=ErrorCode.NEEDS_REVIEW)
    before = audit.snapshot(case)
    if trial.randomisation_unit == "case":
        slot = _reveal_next(trial, stratum_key_for_case(case), actor)
        slot.case = case
        slot.save(update_fields=["revealed_at", "revealed_by", "case"])
        case.arm = slot.arm
        case.enrolled_at = slot.revealed_at
    else:
        case.enrolled_at = timezone.now()
    case.status = Case.Status.ENROLLED
    case.save(update_fields=["arm", "enrolled_at", "status"])
    audit.record(actor=actor, trial=trial, action="enrol", obj=case, before=before, after=audit.snapshot(case))
    signals.case_enrolled.send(sender=Case, case=case, actor=actor)  # reads and drafts, in this transaction
    return case


@transaction.atomic
def exclude_case(actor, case: Case, reason: str) -> Case:
    ensure_coordinator(actor, case.trial)
    ensure_writable(case.trial)
    if not reason:
        raise InvalidInput("Excluding a case needs a reason.")
    case = Case.objects.select_for_update().get(pk=case.pk)
    before = audit.snapshot(case)
    case.status = Case.Status.EXCLUDED
    case.exclusion_reason = reason
    with audit.history_context(actor=actor, reason=reason):
        case.save(update_fields=["status", "exclusion_reason"])
    audit.record(actor=actor, trial=case.trial, action="exclude", obj=case, before=before, after=audit.snapshot(case),
                 reason=reason)
    return case


def _announce_ai_arm(actor, arm: Arm, model_version) -> None:
    """The inference app records the arm's model version (the given one, else its default); without a receiver
    the arm could draft nothing, so that is refused rather than half-made."""
    answers = signals.ai_arm_added.send(sender=Arm, arm=arm, model_version=model_version, actor=actor)
    if not answers:
        raise InvalidInput("An AI arm needs a model version, and no inference app is installed.")


def enrol_all_imported(actor, trial: Trial) -> tuple[int, list[str]]:
    """Enrol every imported, not excluded case, each in its own transaction (one refusal does not undo others)."""
    ensure_coordinator(actor, trial)
    done, problems = 0, []
    for case in trial.cases.filter(enrolled_at__isnull=True, status=Case.Status.IMPORTED,
                                   needs_review=False, library=False).order_by("code"):
        try:
            enrol_case(actor, case)
            done += 1
        except (Conflict, InvalidInput) as exc:
            problems.append(f"{case.code}: {exc.message}")
            if exc.code == ErrorCode.ENROLMENT_CLOSED:
                break
    return done, problems
