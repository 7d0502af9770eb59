"""Text PostgreSQL cannot store (a NUL, a lone surrogate: JSON's \\u0000 and \\ud800 parse) in an amendment's reason:
the seventh session made it a 400 in report text and rating comments (core.errors.storable_text); reasons were
left. A read's, a rating's and an arena judgement's amendment reason is now the same 400 invalid, nothing saved."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from rating import services as rating_services
from rating.models import ArenaAmendment, ArenaTask, Rating, RatingAmendment
from rating.services import create_arena_tasks
from reading.models import Read, ReadAmendment
from tests.factories.rating import GOOD, complete_case
from tests.rating.arena_support import arena_trial

pytestmark = pytest.mark.django_db(transaction=True)

BAD = ("nul\u0000byte", "lone \ud800 surrogate")


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _post(api, url, body):
    return api.post(url, json.dumps(body), content_type="application/json")


def test_amendment_reasons_that_cannot_be_stored_are_refused(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = arena_trial(code="NUL", versions=2, cases=1, experts=1, panel=1)
    case = t["cases"][0]
    complete_case(case)
    read = Read.objects.filter(case=case).first()
    rating = Rating.objects.get(case=case)
    rating_services.submit_rating(rating.expert.user, rating, GOOD)
    create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    arena = ArenaTask.objects.get(case=case)
    expert = arena.expert.user
    rating_services.submit_arena_task(expert, arena, {"preference": "A"})
    arena.refresh_from_db()
    assert arena.status == "done"
    code = t["trial"].code
    report = {"findings_text": read.findings_text, "impression_text": read.impression_text,
              "finding_marks": read.finding_marks}
    problems = []
    for reason in BAD:
        for api, url, body in (
            (_api(t["coordinator"]), reverse("reading-api:amend", args=[read.public_id]), {**report, "reason": reason}),
            (_api(t["coordinator"]), reverse("rating-amend", args=[code, rating.public_id]),
             {"comment": "x", "reason": reason}),
            (_api(expert), reverse("arena-amend", args=[code, arena.public_id]), {"preference": "B", "reason": reason}),
        ):
            r = _post(api, url, body)
            if r.status_code != 400 or r.json().get("code") != "invalid":
                problems.append((url, repr(reason), r.status_code, r.content[:200]))
    assert not problems, problems
    assert not (ReadAmendment.objects.exists() or RatingAmendment.objects.exists() or ArenaAmendment.objects.exists())
