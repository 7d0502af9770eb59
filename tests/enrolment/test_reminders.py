"""Email reminders of overdue work (issue 17): who gets one, what it says (counts and a worklist link, nothing
that separates the arms), the audit entry, at most one a day, the command, the beat task and the coordinator's
button."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from enrolment import reminders, services
from enrolment.tasks import send_reminders as reminders_task
from rating.models import Rating
from reading.models import Read
from tests.factories.rating import complete_case
from tests.factories.reading import with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial.models import AuditEntry, Trial

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_draft_tasks(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def _overdue_trial(code="REM"):
    t = make_trial(code=code, experts=2, expert_panel_size=2, preference_majority=2)
    cases = add_cases(t, 3)
    with_images_and_drafts(t, cases)
    complete_case(cases[0])  # its rating tasks exist; the other cases' reads are open
    old = timezone.now() - dt.timedelta(days=t["trial"].overdue_after_days + 1)
    Read.objects.filter(case__in=cases[1:]).update(created_at=old)
    Rating.objects.filter(case=cases[0]).update(created_at=old)
    return t, cases


def _arm_words(t):
    words = {"ai_assisted", "unassisted", "ai-assisted", "standard care", "assisted", "draft", "model", "arm "}
    for arm in t["arms"].values():
        words |= {arm.code.lower(), arm.name.lower()}
    return words


def test_people_with_overdue_work_get_a_count_and_their_worklist_and_nothing_about_arms(mailoutbox):
    t, cases = _overdue_trial()
    people = reminders.overdue_people(t["trial"])
    roles = {p.role for p in people}
    assert roles == {"reader", "expert"}
    assert {p.username for p in people if p.role == "expert"} == {m.user.username for m in t["experts"]}
    result = services.send_reminders(actor=t["coordinator"], trial=t["trial"], site_url="https://trial.example")
    assert sorted(result.sent) == sorted(p.username for p in people) and len(mailoutbox) == len(people)
    by_to = {m.to[0]: m for m in mailoutbox}
    for p in people:
        mail = by_to[p.email]
        assert f"{p.overdue} overdue" in mail.subject and t["trial"].code in mail.subject
        worklist = "/reading/" if p.role == "reader" else "/rating/"
        assert f"https://trial.example{worklist}{t['trial'].code}/" in mail.body
        assert f"You have {p.overdue} " in mail.body
        text = (mail.subject + "\n" + mail.body).lower()
        for word in _arm_words(t):
            assert word not in text, (word, mail.body)
        for case in cases:
            assert case.code.lower() not in text
    entries = AuditEntry.objects.filter(trial=t["trial"], action="remind")
    assert entries.count() == len(people)
    assert {e.after["overdue"] for e in entries} == {p.overdue for p in people}
    assert all(set(e.after) == {"role", "overdue"} for e in entries)


def test_at_most_one_reminder_a_day_and_none_without_overdue_work(mailoutbox):
    t, _ = _overdue_trial("REM2")
    first = services.send_reminders(actor=None, trial=t["trial"])
    again = services.send_reminders(actor=None, trial=t["trial"])
    assert first.sent and not again.sent and sorted(again.recently_reminded) == sorted(first.sent)
    later = services.send_reminders(actor=None, trial=t["trial"], now=timezone.now() + dt.timedelta(hours=21))
    assert sorted(later.sent) == sorted(first.sent)
    Read.objects.filter(case__trial=t["trial"]).update(created_at=timezone.now())
    Rating.objects.filter(case__trial=t["trial"]).update(created_at=timezone.now())
    assert reminders.overdue_people(t["trial"]) == []


def test_a_person_without_email_is_listed_not_mailed(mailoutbox):
    t, _ = _overdue_trial("REM3")
    expert = t["experts"][0].user
    expert.email = ""
    expert.save()
    result = services.send_reminders(actor=None, trial=t["trial"])
    assert expert.username in result.no_email and expert.username not in result.sent


def test_command_and_beat_task_remind_every_working_trial_and_skip_locked_ones(mailoutbox):
    t, _ = _overdue_trial("REM4")
    locked, _ = _overdue_trial("REM5")
    Trial.objects.filter(pk=locked["trial"].pk).update(status=Trial.Status.LOCKED)
    out = io.StringIO()
    call_command("send_reminders", stdout=out)
    assert "REM4: " in out.getvalue() and "REM5" not in out.getvalue()
    sent = len(mailoutbox)
    assert sent == len(reminders.overdue_people(t["trial"]))
    assert reminders_task.apply().get() == {"REM4": 0}  # everyone was reminded by the command just now
    assert len(mailoutbox) == sent


def test_coordinator_sends_reminders_from_the_trial_page(client, mailoutbox):
    t, _ = _overdue_trial("REM6")
    assert client.login(username=t["coordinator"].username, password=PASSWORD)
    page = client.get(reverse("trial:detail", args=[t["trial"].code])).content.decode()
    assert reverse("enrolment:reminders", args=[t["trial"].code]) in page
    r = client.post(reverse("enrolment:reminders", args=[t["trial"].code]), follow=True)
    assert "reminder(s) sent" in r.content.decode() and mailoutbox
    assert mailoutbox[0].body.count("http://testserver/") == 1
    reader = t["readers"][0].user
    client.logout()
    assert client.login(username=reader.username, password=PASSWORD)
    assert client.post(reverse("enrolment:reminders", args=[t["trial"].code])).status_code == 403
