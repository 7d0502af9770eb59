"""Drafts inside the app: queued at enrolment, made in-process by the retrieval baseline, visible to
coordinators with their timing, failed drafts retried."""
from __future__ import annotations

import pytest

from inference.models import Draft
from tests.factories import PASSWORD, make_trial
from tests.factories_reading import add_image
from trial import services
from trial.models import AuditEntry, Trial

pytestmark = pytest.mark.django_db(transaction=True)  # drafts are sent on commit


@pytest.fixture
def t():
    return make_trial(code="DRF", status=Trial.Status.READING)


def test_enrolment_makes_a_retrieval_draft_for_every_case(t):
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="D1")
    add_image(case)
    services.enrol_case(t["coordinator"], case)
    d = Draft.objects.get(case=case)
    assert d.status == "ready", d.error
    assert d.model_version.backend == "retrieval" and d.parameters["backend"] == "retrieval"
    # one case: the bundled IU bank (no images) is used, so the draft has text and no probabilities
    assert d.findings_text and d.probabilities == {} and d.parameters["retrieval_mode"] == "hash"
    assert d.neighbours and d.queue_wait_s is not None and d.generate_s is not None and d.attempts == 1


def test_failed_draft_is_shown_and_retried(t, client):
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code="D2")
    services.enrol_case(t["coordinator"], case)  # no image yet
    d = Draft.objects.get(case=case)
    assert d.status == "failed" and "has no images" in d.error
    client.login(username=t["coordinator"].username, password=PASSWORD)
    page = client.get(f"/inference/{t['trial'].code}/")
    assert page.status_code == 200 and b"has no images" in page.content and b"retrieval baseline" in page.content
    add_image(case)
    r = client.post(f"/inference/{t['trial'].code}/drafts/{d.pk}/retry/", follow=True)
    assert b"queued again" in r.content
    d.refresh_from_db()
    assert d.status == "ready" and d.attempts == 2 and d.error == ""
    assert AuditEntry.objects.filter(trial=t["trial"], action="draft:retry").count() == 1
    r = client.post(f"/inference/{t['trial'].code}/drafts/{d.pk}/retry/", follow=True)
    assert b"Only failed drafts" in r.content
    assert Draft.objects.filter(case=case).count() == 1


def test_readers_cannot_see_the_drafts_page(t, client):
    client.login(username=t["readers"][0].user.username, password=PASSWORD)
    assert client.get(f"/inference/{t['trial'].code}/").status_code == 403
