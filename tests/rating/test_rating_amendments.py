"""Amendments of a submitted rating (issue 18 item 2): the expert, or a coordinator, with a reason, before lock; the
rating keeps its first submission (what the analysis counts); each amendment is stored, audited with old and new
values, and exported after lock as its own table; nothing the expert receives names an arm."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from analysis.export import build_export
from core.errors import Conflict, InvalidInput, NotAllowed, TrialLocked
from inference.selectors import arm_model_version
from rating import services
from rating.models import Rating, RatingAmendment
from tests.factories.rating import GOOD, complete_case, rating_trial
from trial import services as trial_services
from trial.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("AMD-2")]


@pytest.fixture
def rated(db):
    t = rating_trial(code="RA", experts=2, panel=2, cases=2, ai_model=True)
    for c in t["cases"]:
        complete_case(c)
    t["rating"] = Rating.objects.filter(case=t["cases"][0], expert=t["experts"][0]).get()
    t["other"] = Rating.objects.filter(case=t["cases"][0], expert=t["experts"][1]).get()
    t["expert"] = t["experts"][0].user
    services.submit_rating(t["expert"], t["rating"], GOOD)
    t["rating"].refresh_from_db()
    return t


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def amend_url(t, rating) -> str:
    return reverse("rating-amend", args=[t["trial"].code, rating.public_id])


def test_expert_amends_with_reason_the_original_stays_and_the_amendment_is_stored_and_audited(rated):
    t, rating, user = rated, rated["rating"], rated["expert"]
    first = {k: getattr(rating, k) for k in (*services.ANSWER_FIELDS, "submitted_at")}
    r = client_for(user).post(amend_url(t, rating), {"quality_b": 1, "preference": "A", "reason": "Misread B"},
                              format="json")
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["number"] == 1 and out["amended_as"] == "expert" and out["already_amended"] is False
    assert out["previous"]["quality_b"] == 3 and out["amended"]["quality_b"] == 1
    assert out["amended"]["quality_a"] == 4 and out["amended"]["comment"] == "Clear."  # the rest is kept
    rating.refresh_from_db()
    assert {k: getattr(rating, k) for k in first} == first  # the first submission is unchanged
    a = RatingAmendment.objects.get(rating=rating)
    assert a.amended_by == user and a.reason == "Misread B" and a.previous["quality_b"] == 3
    entry = AuditEntry.objects.get(action="rating:amend", object_id=str(rating.pk))
    assert entry.reason == "Misread B" and entry.before["quality_b"] == 3
    assert entry.after["quality_b"] == 1 and entry.after["amendment"] == 1
    second, created = services.amend_rating(actor=user, rating=rating, answer={"comment": "Both fair."},
                                            reason="Comment")
    assert created and second.number == 2 and second.previous["quality_b"] == 1
    assert second.amended["comment"] == "Both fair." and second.amended["quality_b"] == 1


def test_nothing_the_expert_receives_from_amending_names_an_arm(rated):
    """Blinding (docs/design.md section 5): the answer, and every refusal, speak of A and B only."""
    t, rating, user = rated, rated["rating"], rated["expert"]
    c = client_for(user)
    bodies = [c.post(amend_url(t, rating), {"quality_a": 2, "reason": "Second look"}, format="json"),
              c.post(amend_url(t, rating), {"quality_a": 2, "reason": "Second look"}, format="json"),  # repeat
              c.post(amend_url(t, rating), {"quality_a": 2, "reason": "Other"}, format="json"),  # no change: 409
              c.post(amend_url(t, rating), {"quality_a": 9, "reason": "x"}, format="json"),  # 400
              c.post(amend_url(t, rating), {"quality_a": 3}, format="json"),  # no reason: 400
              c.post(amend_url(t, t["other"]), {"quality_a": 3, "reason": "x"}, format="json")]  # not theirs: 404
    assert [b.status_code for b in bodies] == [200, 200, 409, 400, 400, 404]
    arms = t["arms"]
    forbidden = [*(a.code for a in arms.values()), *(a.name for a in arms.values()),
                 arm_model_version(arms["ai_assisted"]).name, *(m.user.username for m in t["readers"]),
                 rating.read_a.public_id, rating.read_b.public_id]
    text = " ".join(b.content.decode() for b in bodies).lower()
    for s in forbidden:
        assert s.lower() not in text, s
    assert set(bodies[0].json()) == {"rating_id", "number", "amended_as", "reason", "created_at", "previous",
                                     "amended", "already_amended"}


def test_another_expert_a_reader_and_the_statistician_are_refused(rated):
    t, rating = rated, rated["rating"]
    body = {"quality_a": 1, "reason": "why not"}
    with pytest.raises(NotAllowed):
        services.amend_rating(actor=t["experts"][1].user, rating=rating, answer={"quality_a": 1}, reason="why not")
    assert client_for(t["experts"][1].user).post(amend_url(t, rating), body, format="json").status_code == 404
    assert client_for(t["readers"][0].user).post(amend_url(t, rating), body, format="json").status_code == 403
    assert client_for(t["statistician"].user).post(amend_url(t, rating), body, format="json").status_code == 403
    assert not RatingAmendment.objects.exists()


def test_the_reason_is_required_and_a_coordinator_amends_with_one(rated):
    t, rating, coord = rated, rated["rating"], rated["coordinator"]
    c = client_for(coord)
    for reason in (None, "", "   "):
        body = {"quality_a": 2, **({} if reason is None else {"reason": reason})}
        r = c.post(amend_url(t, rating), body, format="json")
        assert r.status_code == 400 and "reason" in r.json()["detail"].lower(), r.content
    with pytest.raises(InvalidInput):
        services.amend_rating(actor=coord, rating=rating, answer={"quality_a": 2}, reason=" ")
    assert not RatingAmendment.objects.exists()
    r = c.post(amend_url(t, rating), {"quality_a": 2, "reason": "Entered for the wrong report"}, format="json")
    assert r.status_code == 200 and r.json()["amended_as"] == "coordinator"
    a = RatingAmendment.objects.get(rating=rating)
    assert a.amended_by == coord and a.amended["quality_a"] == 2


def test_an_unsubmitted_rating_an_incomplete_answer_and_a_locked_trial_are_refused(rated):
    t = rated
    with pytest.raises(Conflict):
        services.amend_rating(actor=t["experts"][1].user, rating=t["other"], answer={"quality_a": 2}, reason="r")
    r = client_for(t["experts"][1].user).post(amend_url(t, t["other"]), {"quality_a": 2, "reason": "r"},
                                              format="json")
    assert r.status_code == 409 and r.json()["code"] == "not_submitted"
    with pytest.raises(InvalidInput):  # blanking a required part
        services.amend_rating(actor=t["expert"], rating=t["rating"], answer={"quality_b": None}, reason="r")
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    with pytest.raises(TrialLocked):
        services.amend_rating(actor=t["expert"], rating=t["rating"], answer={"quality_a": 1}, reason="late")
    r = client_for(t["expert"]).post(amend_url(t, t["rating"]), {"quality_a": 1, "reason": "late"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "trial_locked"
    assert not RatingAmendment.objects.exists()


def test_a_repeated_amendment_is_idempotent_and_no_change_is_refused(rated):
    t, rating, user = rated, rated["rating"], rated["expert"]
    c = client_for(user)
    body = {"preference": "none", "reason": "Equal really"}
    first, second = (c.post(amend_url(t, rating), body, format="json") for _ in range(2))
    assert first.status_code == second.status_code == 200
    assert first.json()["already_amended"] is False and second.json()["already_amended"] is True
    assert RatingAmendment.objects.filter(rating=rating).count() == 1
    assert AuditEntry.objects.filter(action="rating:amend").count() == 1
    r = c.post(amend_url(t, rating), {**body, "reason": "Another reason"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "no_change"


@pytest.mark.requirement("AMD-3")
def test_the_export_carries_rating_amendments_after_lock_only_and_the_ratings_table_keeps_the_first(rated):
    t, rating, user = rated, rated["rating"], rated["expert"]
    services.amend_rating(actor=user, rating=rating, answer={"preference": "B", "quality_b": 5},
                          reason="Changed my mind")
    before = build_export(t["trial"])
    assert "rating_amendments" not in before.tables
    assert "rating_amendments" in before.manifest["tables_withheld_until_lock"]
    assert not any(d["table"] == "rating_amendments" for d in before.dictionary)
    assert "Changed my mind" not in json.dumps(before.tables, default=str)
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    t["trial"].refresh_from_db()
    export = build_export(t["trial"])
    rows = export.tables["rating_amendments"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["rating_id"], row["amendment"], row["amended_as"], row["reason"]) == \
        (rating.public_id, 1, "expert", "Changed my mind")
    assert (row["preference"], row["quality_a"], row["quality_b"]) == ("B", 4, 5)
    first = next(r for r in export.tables["ratings"] if r["rating_id"] == rating.public_id)
    assert (first["preference"], first["quality_b"]) == ("A", 3)  # the analysis counts the first submission
    assert any(d["table"] == "rating_amendments" and d["column"] == "reason" for d in export.dictionary)


def test_a_coordinator_who_also_rates_cannot_amend_another_experts_rating_through_the_service(rated):
    """Blinding in the service too, not only in the page's selector: a coordinator holding an expert membership
    (written around the services) is a blinded participant until lock (docs/design.md section 5)."""
    from trial.models import Membership

    t, rating, coord = rated, rated["rating"], rated["coordinator"]
    Membership.objects.create(trial=t["trial"], user=coord, role=Membership.Role.EXPERT, center=t["centers"][0])
    coord = type(coord).objects.get(pk=coord.pk)  # a new request's user (roles are cached per user object)
    with pytest.raises(NotAllowed):
        services.amend_rating(actor=coord, rating=rating, answer={"quality_a": 2}, reason="Wrong report")
    assert not RatingAmendment.objects.exists()
