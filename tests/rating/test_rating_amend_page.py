"""The expert's amendment page (issue 18): reached from the rating worklist for a submitted task, the blinded
reports, a form with the latest answer and a required reason, the history below; refusals shown on the page; before
lock only; nothing on it names an arm, a model, a reader or a read."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from inference.selectors import arm_model_version
from rating import services
from rating.models import Rating, RatingAmendment
from tests.factories.rating import GOOD, complete_case, rating_trial
from trial import services as trial_services

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("AMD-2")]


@pytest.fixture
def rated(db):
    t = rating_trial(code="RP", experts=2, panel=2, cases=2, ai_model=True)
    for c in t["cases"]:
        complete_case(c)
    t["rating"] = Rating.objects.filter(case=t["cases"][0], expert=t["experts"][0]).get()
    t["other"] = Rating.objects.filter(case=t["cases"][0], expert=t["experts"][1]).get()
    t["expert"] = t["experts"][0].user
    services.submit_rating(t["expert"], t["rating"], GOOD)
    t["rating"].refresh_from_db()
    return t


def client_of(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def forbidden_words(t, rating) -> list[str]:
    arms = t["arms"]
    return [*(a.code for a in arms.values()), *(a.name for a in arms.values()),
            arm_model_version(arms["ai_assisted"]).name, *(m.user.username for m in t["readers"]),
            rating.read_a.public_id, rating.read_b.public_id]


def test_expert_amends_from_the_worklist_with_a_reason_and_sees_the_history_blinded(rated):
    t, rating = rated, rated["rating"]
    code = t["trial"].code
    c = client_of(t["expert"])
    url = reverse("rating:amend", args=[code, rating.public_id])
    assert url in c.get(reverse("rating:worklist", args=[code])).content.decode()
    assert url in c.get(reverse("rating:task", args=[code, rating.public_id])).content.decode()
    pages = [c.get(url)]
    assert pages[0].status_code == 200 and "No amendments yet." in pages[0].content.decode()
    body = {"preference": "A", "quality_a": "4", "quality_b": "1", "comment": "Clear."}
    pages.append(c.post(url, body))  # no reason
    assert pages[-1].status_code == 400 and "Give the reason for the amendment." in pages[-1].content.decode()
    assert not RatingAmendment.objects.exists()
    r = c.post(url, {**body, "reason": "Misread B"})
    assert r.status_code == 302 and r["Location"] == url
    a = RatingAmendment.objects.get(rating=rating)
    assert a.number == 1 and a.reason == "Misread B" and a.previous["quality_b"] == 3 and a.amended["quality_b"] == 1
    rating.refresh_from_db()
    assert rating.quality_b == 3  # the submission is kept
    pages.append(c.get(url))
    html = pages[-1].content.decode()
    assert "Amendment 1" in html and "Misread B" in html and "3 · Acceptable" in html and "1 · Unacceptable" in html
    pages.append(c.post(url, {**body, "reason": "Again"}))  # no change
    assert pages[-1].status_code == 409 and "nothing to amend" in pages[-1].content.decode()
    pages.append(c.post(url, {**body, "quality_a": "9", "reason": "x"}))  # out of the scale
    assert pages[-1].status_code == 400
    text = " ".join(p.content.decode() for p in pages).lower()
    for s in forbidden_words(t, rating):
        assert s.lower() not in text, s


def test_another_experts_task_unsubmitted_and_locked(rated):
    t, rating = rated, rated["rating"]
    code = t["trial"].code
    other = client_of(t["experts"][1].user)
    url = reverse("rating:amend", args=[code, rating.public_id])
    assert other.get(url).status_code == 404
    assert other.post(url, {"quality_a": "1", "reason": "x"}).status_code == 404
    assert client_of(t["readers"][0].user).get(url).status_code == 403
    # the other expert's own task is not submitted yet: sent to the task page
    r = other.get(reverse("rating:amend", args=[code, t["other"].public_id]))
    assert r.status_code == 302 and r["Location"] == reverse("rating:task", args=[code, t["other"].public_id])
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    c = client_of(t["expert"])
    page = c.get(url)
    assert page.status_code == 200 and "is locked" in page.content.decode()
    assert url not in c.get(reverse("rating:worklist", args=[code])).content.decode()
    r = c.post(url, {"quality_a": "1", "reason": "Too late"})
    assert r.status_code == 409 and "locked" in r.content.decode()
    assert not RatingAmendment.objects.exists()


def test_a_coordinator_amends_a_rating_from_the_case_page_blinded_as_the_expert_is(rated):
    """Coordinators amended through the API only; the same page now serves them, reached from the case page: the
    A/B reports and answer as the expert sees them (no arm, model, reader or read id), the amendment recorded as
    the coordinator's, an unsubmitted task explained (409), no link once the trial is locked."""
    t, rating, other = rated, rated["rating"], rated["other"]
    code, coordinator = t["trial"].code, t["coordinator"]
    c = client_of(coordinator)
    url = reverse("rating:amend", args=[code, rating.public_id])
    case_page = reverse("enrolment:case", args=[code, rating.case_id])
    html = c.get(case_page).content.decode()
    assert url in html and reverse("rating:amend", args=[code, other.public_id]) not in html  # not submitted
    pages = [c.get(url)]
    assert pages[0].status_code == 200 and "the expert's submitted rating" in pages[0].content.decode()
    assert case_page in pages[0].content.decode()  # back to the case, not to an expert's worklist
    body = {"preference": "A", "quality_a": "4", "quality_b": "1", "comment": "Clear.", "reason": "Expert's e-mail"}
    r = c.post(url, body)
    assert r.status_code == 302 and r["Location"] == url
    a = RatingAmendment.objects.get(rating=rating)
    assert a.amended_by == coordinator and a.amended_as == "coordinator" and a.amended["quality_b"] == 1
    pages.append(c.get(url))
    assert "Expert&#x27;s e-mail" in pages[-1].content.decode()
    services.autosave_rating(other.expert.user, other, {"quality_a": 2, "comment": "Half-way thought"})
    pages.append(c.get(reverse("rating:amend", args=[code, other.public_id])))
    assert pages[-1].status_code == 409 and "has not submitted it yet" in pages[-1].content.decode()
    # nor the expert's answer in progress: the coordinator sees a rating's answer once it is submitted only
    assert "Half-way thought" not in pages[-1].content.decode()
    assert 'value="2" checked' not in pages[-1].content.decode()
    text = " ".join(p.content.decode() for p in pages).lower()
    for s in forbidden_words(t, rating):
        assert s.lower() not in text, s
    trial_services.lock_trial(coordinator, t["trial"], reason="end of study")
    assert url not in c.get(case_page).content.decode()
