"""Reads that respect permissions. Never returns unrevealed allocations."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from core.compiled import CompiledQuery

from . import signals
from .audit import CHAIN_OPEN, FieldChange, to_json, verify_all
from .blinding import require_not_blinded
from .models import AllocationList, AllocationSlot, AuditEntry, Case, Center, Membership, Trial
from .permissions import Role, require_role
from .signatures import SIGNED_STEPS, verify_signatures

# The trial of every URL (its code): compiled once per process (core.compiled; issue 19).
_TRIAL_BY_CODE = CompiledQuery(lambda *, code: Trial.objects.filter(code=code).order_by("pk")[:1], kind="object",
                               params={"code": str})


def trial_or_404(code: str) -> Trial:
    """The trial with this code, or 404 (as ``get_object_or_404(Trial, code=code)``)."""
    trial = _TRIAL_BY_CODE(code=code) if isinstance(code, str) else None
    if trial is None:
        raise Http404("No Trial matches the given query.")
    return trial


def trials_for_user(user) -> QuerySet[Trial]:
    return Trial.objects.filter(memberships__user=user).distinct()


def trial_for_coordinator(user, code: str) -> Trial:
    trial = Trial.objects.get(code=code)
    require_role(user, trial, Role.COORDINATOR)
    return trial


def revealed_allocations(user, trial: Trial) -> QuerySet[AllocationSlot]:
    """Coordinators see allocations already revealed by enrolment, nothing else (and, before lock, not when they
    also read or rate: trial/blinding.py)."""
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)
    return (
        AllocationSlot.objects.filter(stratum__allocation_list__trial=trial, revealed_at__isnull=False)
        .select_related("arm", "case", "membership__user", "stratum")
        .order_by("revealed_at", "pk")
    )


def trial_progress(trial: Trial) -> dict:
    cases = Case.objects.filter(trial=trial).aggregate(
        total=Count("id"),
        enrolled=Count("id", filter=Q(enrolled_at__isnull=False)),
        excluded=Count("id", filter=Q(status=Case.Status.EXCLUDED)),
        not_enrolled=Count("id", filter=Q(status=Case.Status.IMPORTED, enrolled_at__isnull=True, needs_review=False)),
        awaiting_review=Count("id", filter=Q(status=Case.Status.IMPORTED, needs_review=True)),
    )
    members = dict(
        Membership.objects.filter(trial=trial).values_list("role").annotate(n=Count("id")).values_list("role", "n")
    )
    readers_enrolled = Membership.objects.filter(trial=trial, role=Role.READER, enrolled_at__isnull=False).count()
    readers_not_enrolled = members.get(Role.READER, 0) - readers_enrolled
    progress = {"cases": cases, "members": members, "readers_enrolled": readers_enrolled,
                "readers_not_enrolled": readers_not_enrolled}
    for _receiver, counts in signals.progress_requested.send(sender=Trial, trial=trial):
        progress.update(counts)  # reading's and rating's counts (their apps connect the receivers)
    return progress


@dataclass(frozen=True)
class Outstanding:
    """One kind of unfinished work a status change would leave behind: `code` for callers, `message` for people."""

    code: str
    count: int
    message: str


# What each status change would leave behind (docs/design.md section 2's workflow): enrolling needs readers and a
# full expert panel; reading needs the cases and readers enrolled and every read assigned; rating needs the reads
# done; lock needs everything done. Each entry: (code, message template, how to count it from the progress dict).
_CHECKS = {
    "no_readers": ("no reader has been added", lambda p, t: 0 if p["members"].get(Role.READER) else 1),
    "experts_short": ("{n} expert(s) short of the panel of {panel}",
                      lambda p, t: max(0, t.expert_panel_size - p["members"].get(Role.EXPERT, 0))),
    "cases_not_enrolled": ("{n} imported case(s) not enrolled", lambda p, t: p["cases"]["not_enrolled"]),
    "cases_awaiting_review": ("{n} case(s) awaiting image review", lambda p, t: p["cases"]["awaiting_review"]),
    "readers_not_enrolled": ("{n} reader(s) not enrolled", lambda p, t: p["readers_not_enrolled"]),
    "reads_unassigned": ("{n} read(s) without a reader", lambda p, t: p.get("reads_unassigned") or 0),
    "reads_not_done": ("{n} read(s) not done", lambda p, t: (p.get("reads_total") or 0) - (p.get("reads_done") or 0)),
    "ratings_not_done": ("{n} rating(s) not done",
                         lambda p, t: (p.get("ratings_total") or 0) - (p.get("ratings_done") or 0)),
    "cases_short_of_panel": ("{n} case(s) with a short expert panel", lambda p, t: p.get("cases_short_of_panel") or 0),
}
_ENROLMENT = ["cases_not_enrolled", "cases_awaiting_review", "readers_not_enrolled", "reads_unassigned"]
TRANSITION_CHECKS = {
    Trial.Status.ENROLLING: ["no_readers", "experts_short"],
    Trial.Status.READING: _ENROLMENT,
    Trial.Status.RATING: [*_ENROLMENT, "reads_not_done"],
    Trial.Status.LOCKED: [*_ENROLMENT, "reads_not_done", "ratings_not_done", "cases_short_of_panel"],
}


def outstanding_work(trial: Trial, to_status: str) -> list[Outstanding]:
    """What moving `trial` to `to_status` would leave unfinished, from the trial's own counts and the apps above it
    (progress_requested). No permission check: the status service calls it under the trial's row lock; pages and
    the API go through `status_preview`."""
    progress = trial_progress(trial)
    out = []
    for code in TRANSITION_CHECKS.get(to_status, []):
        template, count = _CHECKS[code]
        n = count(progress, trial)
        if n > 0:
            out.append(Outstanding(code, n, template.format(n=n, panel=trial.expert_panel_size)))
    return out


def next_status(trial: Trial) -> str | None:
    order = [s.value for s in Trial.Status]
    i = order.index(trial.status)
    return order[i + 1] if i + 1 < len(order) else None


def status_preview(user, trial: Trial) -> dict:
    """For the coordinator's confirmation: the next status and what moving there would leave outstanding (counts
    only, no arm: nothing here is masked before lock)."""
    require_role(user, trial, Role.COORDINATOR)
    nxt = next_status(trial)
    outstanding = outstanding_work(trial, nxt) if nxt else []
    return {"status": trial.status, "next_status": nxt, "outstanding": outstanding,
            "reason_required": bool(outstanding) or nxt == Trial.Status.LOCKED,
            "signature_required": bool(trial.require_signatures and nxt in SIGNED_STEPS)}


@dataclass(frozen=True)
class AuditFilter:
    """The audit viewer's filters; empty values filter nothing. Dates are UTC calendar days, both inclusive."""

    person: str = ""  # an actor's user id, or "system" for entries without a user
    object_type: str = ""
    action: str = ""
    since: dt.date | None = None
    until: dt.date | None = None


def _trial_audit(user, trial: Trial, *, registry: bool = False) -> QuerySet[AuditEntry]:
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)  # entries carry reads' arms and ratings' A/B reads

    qs = AuditEntry.objects.filter(trial=trial)
    # The registry entries of actor chains are bookkeeping, not changes: listed only when asked for by id.
    return qs if registry else qs.exclude(action=CHAIN_OPEN)


def audit_entries(user, trial: Trial, filters: AuditFilter | None = None) -> QuerySet[AuditEntry]:
    """The trial's audit entries, newest first, for a coordinator who is not blinded (trial/blinding.py)."""
    qs = _trial_audit(user, trial)
    f = filters or AuditFilter()
    if f.person == "system":
        qs = qs.filter(actor__isnull=True)
    elif f.person:
        qs = qs.filter(actor_id=int(f.person))
    if f.object_type:
        qs = qs.filter(object_type=f.object_type)
    if f.action:
        qs = qs.filter(action=f.action)
    if f.since:
        qs = qs.filter(at__gte=dt.datetime.combine(f.since, dt.time.min, tzinfo=dt.UTC))
    if f.until:
        qs = qs.filter(at__lt=dt.datetime.combine(f.until + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC))
    return qs.select_related("actor").order_by("-at", "-pk")


def audit_entry(user, trial: Trial, entry_id: int) -> AuditEntry:
    """One entry of the trial (404 for another trial's, as for one that does not exist)."""
    try:
        return _trial_audit(user, trial, registry=True).select_related("actor").get(pk=entry_id)
    except AuditEntry.DoesNotExist:
        raise Http404("No such audit entry in this trial.") from None


def audit_filter_choices(user, trial: Trial) -> dict[str, list[tuple[str, str]]]:
    """What the viewer's filters offer: the people, object types and actions that occur in the trial's log."""
    qs = _trial_audit(user, trial)
    people = sorted({(str(a) if a else "system", n or "system") for a, n in
                     qs.values_list("actor_id", "actor_name").distinct()}, key=lambda p: p[1])
    types = sorted(qs.values_list("object_type", flat=True).distinct())
    actions = sorted(qs.values_list("action", flat=True).distinct())
    return {"person": people, "object_type": [(t, t) for t in types], "action": [(a, a) for a in actions]}


@dataclass(frozen=True)
class AuditCheck:
    intact: bool
    entries: int
    message: str


def verify_audit_for(user, trial: Trial) -> AuditCheck:
    """The check `manage.py verify_audit` runs (every chain, then the registry of actor chains). Where the first
    broken link is in another trial's or the site's chain, its place is not named to this trial's coordinator."""
    _trial_audit(user, trial)  # the same permission as the log itself
    n, broken = verify_all()
    if broken is None:
        signed, invalid = verify_signatures(trial)
        if invalid:
            return AuditCheck(False, n, f"Audit log intact: {n} entries verified; but {len(invalid)} of {signed} "
                                        "electronic signatures no longer match the record they signed (signatures "
                                        f"{', '.join(str(s.pk) for s in invalid)}).")
        return AuditCheck(True, n, f"Audit log intact: {n} entries verified. {signed} signatures valid.")
    own = broken.chain == f"trial:{trial.pk}" or broken.chain.startswith(f"trial:{trial.pk}:")
    where = str(broken) if own else "a chain outside this trial (ask the site administrator to run verify_audit)"
    return AuditCheck(False, n, f"Audit log broken at {where}")


@dataclass(frozen=True)
class AccessRow:
    """One grant of a role in the trial: current, or removed (with who removed it, when and why)."""

    username: str
    name: str
    role: str
    center: str
    granted_at: dt.datetime | None
    granted_by: str
    removed_at: dt.datetime | None
    removed_by: str
    removal_reason: str
    enrolled_at: dt.datetime | None
    is_active: bool
    last_login: dt.datetime | None


def access_review(user, trial: Trial) -> list[AccessRow]:
    """Every person's roles in the trial, who granted (and removed) each and when, and their last login. Never a
    reader's arm: the review is for access, and blinded coordinators may run it (trial/blinding.py)."""
    require_role(user, trial, Role.COORDINATOR)
    User = get_user_model()
    events = AuditEntry.objects.filter(trial=trial, object_type="trial.Membership", action__in=("create", "delete"))
    grants = {e.object_id: e for e in events if e.action == "create"}
    removals = {e.object_id: e for e in events if e.action == "delete"}
    rows = []
    members = Membership.objects.filter(trial=trial).select_related("user", "center")
    current = {str(m.pk): m for m in members}
    users = User.objects.in_bulk({e.before["user_id"] for e in removals.values() if e.before} |
                                 {m.user_id for m in members})
    centers = dict(Center.objects.filter(trial=trial).values_list("pk", "name"))
    for pk in sorted(set(current) | set(removals), key=int):
        m, grant, removal = current.get(pk), grants.get(pk), removals.get(pk)
        snap = removal.before if removal is not None and removal.before else {}
        person = m.user if m is not None else users.get(snap.get("user_id"))
        rows.append(AccessRow(
            username=person.username if person else f"user {snap.get('user_id')}",
            name=person.get_full_name() if person else "",
            role=m.role if m is not None else snap.get("role", ""),
            center=(m.center.name if m is not None and m.center else centers.get(snap.get("center_id"), "")),
            granted_at=grant.at if grant else (m.created_at if m is not None else None),
            granted_by=grant.actor_name if grant else "",
            removed_at=removal.at if removal else None,
            removed_by=removal.actor_name if removal else "",
            removal_reason=removal.reason if removal else "",
            enrolled_at=m.enrolled_at if m is not None else None,
            is_active=bool(person and person.is_active),
            last_login=person.last_login if person else None,
        ))
    return sorted(rows, key=lambda r: (r.username, r.role, r.granted_at or dt.datetime.min.replace(tzinfo=dt.UTC)))


def allocation_list_summary(user, trial: Trial) -> dict | None:
    """What the coordinator and statistician may know of the sealed list: its commitment and public settings;
    seed, salt and block sizes only once the trial is locked (docs/design.md section 5). None when not generated."""
    require_role(user, trial, Role.COORDINATOR, Role.STATISTICIAN)
    alist = AllocationList.objects.filter(trial=trial).first()
    if alist is None:
        return None
    out = {"unit": alist.unit, "ratio": alist.ratio, "stratify_by_experience": alist.stratify_by_experience,
           "slots_per_stratum": alist.slots_per_stratum, "list_hash": alist.list_hash, "created_at": alist.created_at,
           "disclosed": trial.is_locked}
    if trial.is_locked:
        out.update(block_sizes=alist.block_sizes, seed=alist.seed, salt=alist.salt, scheme=alist.scheme)
    return out


HISTORY_TABLES = ("Trial", "Center", "Arm", "Membership", "Case")  # trial.models.history


@dataclass(frozen=True)
class RowChange:
    """One trigger-recorded write (insert, update or delete) of a row of the trial's setup tables, with the fields
    it changed (old and new values) and who and why when the write came through the application."""

    at: dt.datetime  # the writing transaction's start (PostgreSQL now()): one transaction's writes share it
    event_id: int  # orders the writes of one table within a transaction
    table: str
    object_id: str
    label: str
    changes: list
    actor: str
    reason: str
    url: str

    @property
    def outside_app(self) -> bool:
        """No application context: the write came from raw SQL, a shell without it, or another client."""
        return not (self.actor or self.reason or self.url)


def _row_values(event) -> dict:
    return {f.attname: f.value_from_object(event) for f in event._meta.concrete_fields
            if not f.name.startswith("pgh_")}


def _row_change(ev, old: dict, table: str, users: dict) -> RowChange:
    """One event as a RowChange: the fields that differ from the row's previous event (``old``: its values)."""
    values = to_json(_row_values(ev))
    if ev.pgh_label == "delete":
        changes = [FieldChange(k, v, None) for k, v in sorted(values.items())]
    else:
        old = old if ev.pgh_label != "insert" else {}
        changes = [FieldChange(k, old.get(k), v) for k, v in sorted(values.items()) if old.get(k) != v]
    meta = ev.pgh_context.metadata if ev.pgh_context_id else {}
    actor_id = meta.get("actor") or meta.get("user")
    return RowChange(at=ev.pgh_created_at, event_id=ev.pgh_id, table=table, object_id=str(ev.pgh_obj_id),
                     label=ev.pgh_label, changes=changes,
                     actor=users.get(actor_id, str(actor_id)) if actor_id else "",
                     reason=meta.get("reason") or "", url=meta.get("url") or "")


def _trial_users(trial: Trial) -> dict:
    return dict(get_user_model().objects.filter(memberships__trial=trial).values_list("pk", "username"))


def row_history(user, trial: Trial, *, outside_app_only: bool = False) -> list[RowChange]:
    """The row-level history of the trial's setup tables, newest first (members' and cases' rows carry arms, so the
    same blinding as the audit log)."""
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)
    users = _trial_users(trial)
    out = []
    for name in HISTORY_TABLES:
        model = apps.get_model("trial", f"{name}Event")
        qs = model.objects.filter(pgh_obj_id=trial.pk) if name == "Trial" else model.objects.filter(trial_id=trial.pk)
        previous: dict = {}
        for ev in qs.select_related("pgh_context").order_by("pgh_obj_id", "pgh_id"):
            out.append(_row_change(ev, previous.get(ev.pgh_obj_id, {}), f"trial.{name}", users))
            previous[ev.pgh_obj_id] = to_json(_row_values(ev))
    if outside_app_only:
        out = [c for c in out if c.outside_app]
    return sorted(out, key=lambda c: (c.at, c.event_id), reverse=True)


# The trial's records (issue 18): reads (with a row per heartbeat), amendments, ratings, drafts and analysis runs
# (a row per progress step). Their event tables belong to higher apps, so they are looked up by name (trial imports
# none of them): table -> (app, event model, the path from an event to its trial).
RECORD_TABLES = {
    "reading.Read": ("reading", "ReadEvent", "case__trial_id"),
    "reading.ReadAmendment": ("reading", "ReadAmendmentEvent", "read__case__trial_id"),
    "rating.Rating": ("rating", "RatingEvent", "case__trial_id"),
    "rating.RatingAmendment": ("rating", "RatingAmendmentEvent", "rating__case__trial_id"),
    "rating.ArenaTask": ("rating", "ArenaTaskEvent", "case__trial_id"),  # the standalone arena (issue 20)
    "rating.ArenaAmendment": ("rating", "ArenaAmendmentEvent", "task__case__trial_id"),
    "inference.Draft": ("inference", "DraftEvent", "case__trial_id"),
    "analysis.AnalysisRun": ("analysis", "AnalysisRunEvent", "trial_id"),
}
ROW_LABELS = ("insert", "update", "delete")
ROW_PAGE_SIZE = 50
_APP_CONTEXT_KEYS = ["actor", "user", "reason", "url"]


@dataclass(frozen=True)
class RowFilter:
    """What the Row history page shows of one record table: one row (its id), one kind of write, or only the
    writes made outside the application."""

    object_id: str = ""
    label: str = ""
    outside_app_only: bool = False


def record_history(user, trial: Trial, table: str, filters: RowFilter | None = None, page=None) -> Page:
    """One page (newest first) of the row-level history of one of the trial's record tables, paged and filtered in
    the database (a read has a row per heartbeat). The same access as the setup tables and the audit log: a
    coordinator who is not blinded (reads' rows carry arms and drafts). Each change is against the row's previous
    event, fetched for the page's events only."""
    require_role(user, trial, Role.COORDINATOR)
    require_not_blinded(user, trial)
    if table not in RECORD_TABLES:
        raise Http404("No such table.")
    app_label, model_name, to_trial = RECORD_TABLES[table]
    model = apps.get_model(app_label, model_name)
    f = filters or RowFilter()
    qs = model.objects.filter(**{to_trial: trial.pk})
    if f.object_id:
        qs = qs.filter(pgh_obj_id=int(f.object_id)) if f.object_id.isdigit() else qs.none()
    if f.label in ROW_LABELS:
        qs = qs.filter(pgh_label=f.label)
    if f.outside_app_only:
        qs = qs.filter(Q(pgh_context__isnull=True) | ~Q(pgh_context__metadata__has_any_keys=_APP_CONTEXT_KEYS))
    earlier = model.objects.filter(pgh_obj_id=OuterRef("pgh_obj_id"), pgh_id__lt=OuterRef("pgh_id"))
    qs = qs.annotate(prev_id=Subquery(earlier.order_by("-pgh_id").values("pgh_id")[:1]))
    page_of = Paginator(qs.select_related("pgh_context").order_by("-pgh_id"), ROW_PAGE_SIZE).get_page(page)
    previous = model.objects.in_bulk([ev.prev_id for ev in page_of if ev.prev_id])
    users = _trial_users(trial)
    page_of.object_list = [
        _row_change(ev, to_json(_row_values(previous[ev.prev_id])) if ev.prev_id in previous else {}, table, users)
        for ev in page_of]
    return page_of
