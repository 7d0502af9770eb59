"""Writes of the enrolment app: email reminders of overdue work (issue 17). One transaction per trial; each
reminder sent is audited (who, how many overdue, not what)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from trial import audit
from trial.models import AuditEntry, Trial
from trial.services import ensure_coordinator, ensure_writable

from .reminders import REMIND_STATUSES, Overdue, overdue_people

#: A person is reminded at most once in this many hours (the daily beat task and a coordinator's click together).
MIN_HOURS_BETWEEN = 20
WORKLIST = {"reader": "reading:worklist", "expert": "rating:worklist"}


@dataclass
class ReminderResult:
    sent: list[str] = field(default_factory=list)
    no_email: list[str] = field(default_factory=list)
    recently_reminded: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.sent)} reminder(s) sent, {len(self.recently_reminded)} reminded in the last "
                f"{MIN_HOURS_BETWEEN} hours, {len(self.no_email)} without an email address")


def reminder_email(trial: Trial, person: Overdue, *, site_url: str) -> tuple[str, str]:
    """Subject and body: the trial, how many items are overdue and the person's worklist. Nothing else."""
    context = {"trial": trial, "person": person, "items": "reads" if person.role == "reader" else "rating tasks",
               "worklist": site_url.rstrip("/") + reverse(WORKLIST[person.role], args=[trial.code])}
    subject = render_to_string("enrolment/reminder_subject.txt", context).strip()
    return " ".join(subject.split()), render_to_string("enrolment/reminder_email.txt", context)


@transaction.atomic
def send_reminders(*, actor, trial: Trial, now=None, site_url: str | None = None) -> ReminderResult:
    """Email every reader and expert with overdue work (``actor`` None: the scheduled task). Audited per person."""
    if actor is not None:
        ensure_coordinator(actor, trial)
    ensure_writable(trial)
    now = now or timezone.now()
    site_url = site_url or settings.SITE_URL
    result = ReminderResult()
    recent = set(AuditEntry.objects.filter(trial=trial, action="remind",
                                           at__gte=now - timedelta(hours=MIN_HOURS_BETWEEN))
                 .values_list("object_id", flat=True))
    for person in overdue_people(trial, now):
        if not person.email:
            result.no_email.append(person.username)
            continue
        if str(person.membership_id) in recent:
            result.recently_reminded.append(person.username)
            continue
        subject, body = reminder_email(trial, person, site_url=site_url)
        send_mail(subject, body, None, [person.email])
        audit.record(actor=actor, trial=trial, action="remind", object_type="trial.Membership",
                     object_id=str(person.membership_id), after={"role": person.role, "overdue": person.overdue})
        result.sent.append(person.username)
    return result


def send_all_reminders(*, now=None) -> dict[str, ReminderResult]:
    """Every trial where people are working (the daily beat task and `manage.py send_reminders`)."""
    return {t.code: send_reminders(actor=None, trial=t, now=now)
            for t in Trial.objects.filter(status__in=REMIND_STATUSES).order_by("code")}
