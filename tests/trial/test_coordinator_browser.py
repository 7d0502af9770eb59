"""The coordinator's desk in the browser (issue 17): a status change shows what is outstanding and needs a reason."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from reading.models import Read
from tests.browser import login, screenshot
from tests.factories.imaging import add_image
from tests.factories.rating import submit_read
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial.models import AuditEntry, Trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_status_change_lists_outstanding_work_and_needs_a_reason(page, live_server):
    t = make_trial(code="BST", status=Trial.Status.ENROLLING)
    add_cases(t, 2, enrol=False)
    login(page, live_server, t["coordinator"].username, PASSWORD)
    page.goto(live_server.url + reverse("trial:detail", args=["BST"]))
    page.click("#change-status")
    page.wait_for_selector("#status-confirm")
    assert page.locator("[data-outstanding=cases_not_enrolled]").inner_text() == "2 imported case(s) not enrolled"
    screenshot(page, "coordinator-status-confirm")

    page.click("#confirm-status")  # the reason is required: the browser refuses the empty field
    assert page.evaluate("document.querySelector('#id_reason').validity.valueMissing")
    assert Trial.objects.get(code="BST").status == "enrolling"

    page.fill("#id_reason", "Second batch of cases arrives next week")
    page.click("#confirm-status")
    page.wait_for_url(live_server.url + reverse("trial:detail", args=["BST"]))
    assert page.locator("#trial-status").inner_text() == "Reading"
    entry = AuditEntry.objects.get(trial__code="BST", action="status:reading")
    assert entry.reason == "Second batch of cases arrives next week"
    assert entry.after["outstanding"] == {"cases_not_enrolled": 2}


def test_case_page_shows_images_and_reads_and_excludes_with_reason(page, live_server):
    t = make_trial(code="BCP", status=Trial.Status.READING)
    case = add_cases(t, 1)[0]
    add_image(case)
    done = submit_read(Read.objects.filter(case=case, arm__code="unassisted").get())
    login(page, live_server, t["coordinator"].username, PASSWORD)
    page.goto(live_server.url + reverse("trial:detail", args=["BCP"]))
    row = page.locator(f"#progress-readers tr[data-row='{done.reader.user.username}']")
    assert row.locator("[data-col=done]").inner_text() == "1"
    assert page.locator(f"#progress-centers tr[data-row='{case.center.code}'] [data-col=todo]").inner_text() == "1"
    page.locator("#progress-detail").scroll_into_view_if_needed()
    screenshot(page, "coordinator-progress")
    page.click(f"text={case.code}")
    page.wait_for_selector("#case-images img")
    page.wait_for_function("document.querySelector('#case-images img').naturalWidth > 0")
    assert page.locator("#case-reads [data-read-status=done]").count() == 1
    assert page.locator("#case-reads [data-read-status=todo]").count() == 1
    screenshot(page, "coordinator-case")

    page.fill("#id_exclude_reason", "Lateral view only")
    page.click("#exclude-case")
    page.wait_for_selector("#exclusion-reason")
    assert page.locator("#exclusion-reason").inner_text() == "Excluded: Lateral view only"
    assert AuditEntry.objects.get(trial__code="BCP", action="exclude").reason == "Lateral view only"


def test_invited_person_sets_a_password_from_the_link_and_logs_in(page, live_server, mailoutbox):
    t = make_trial(code="BIN", status=Trial.Status.SETUP)
    login(page, live_server, t["coordinator"].username, PASSWORD)
    page.goto(live_server.url + reverse("trial:detail", args=["BIN"]))
    page.fill("input[name=username]", "invited-stat")
    page.fill("input[name=email]", "invited-stat@example.org")
    page.select_option("select[name=role]", "statistician")
    page.click("form[action$='/members/'] button[type=submit]")
    page.wait_for_selector("text=An invitation to set a password was emailed to invited-stat@example.org")
    assert len(mailoutbox) == 1
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mailoutbox[0].body).group(0)

    page.context.clear_cookies()
    page.goto(link)
    page.fill("input[name=new_password1]", "browser-long-Passphrase-5")
    page.fill("input[name=new_password2]", "browser-long-Passphrase-5")
    screenshot(page, "invitation-set-password")
    page.click("#set-password")
    page.wait_for_selector("#reset-complete")
    login(page, live_server, "invited-stat", "browser-long-Passphrase-5")
    assert page.url.rstrip("/") == live_server.url  # home, logged in
    assert page.locator("text=invited-stat").first.is_visible()
