"""The coordinator's desk in the browser (issue 17): a status change shows what is outstanding and needs a reason."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser import login, screenshot
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
