"""Deeply nested JSON (core.parsers): a body of 100,000 nested lists was a 500 (RecursionError out of DRF's
JSONParser) on every JSON endpoint. Now one fixed depth (MAX_JSON_DEPTH) decides, on the full path and in the light
lane alike: deeper is the API's 400 ``{code: "parse_error", detail}``, as any malformed JSON; at the limit both
answer as before. Checked on a reader's autosave (token, and a session with an Accept the lane does not take), an
expert's rating autosave (the lane falls through), a read's amendment (coordinator) and a coordinator's setup
endpoint, at depths past Python's recursion limit, between the lane's and DRF's stack depths, and at the limit."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from core.parsers import MAX_JSON_DEPTH, TOO_DEEP, nested_too_deep
from rating.models import Rating
from reading import services
from reading.models import Read
from tests.clients import browser_client as _browser
from tests.clients import token_client as _token
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.reading import reader_in, reads_of
from trial.models import Center

pytestmark = pytest.mark.django_db(transaction=True)

# Past the recursion limit; between the lane's stack depth and DRF's (parsed by one, not the other, before the
# fixed limit); just past the fixed limit.
DEEP = (100_000, 960, 900, MAX_JSON_DEPTH + 1)


def _nested(depth: int, key: str = "junk", extra: str = "") -> bytes:
    """A JSON object whose `key` nests lists so that the whole body is `depth` levels deep."""
    inner = depth - 1
    return ('{' + extra + f'"{key}": ' + "[" * inner + "]" * inner + "}").encode()


@pytest.fixture
def t(transactional_db, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = rating_trial(code="DEEP", cases=3, panel=2, experts=2)
    complete_case(t["cases"][0])
    t["reader"] = reader_in(t, "unassisted")
    return t


def _refused(r) -> None:
    assert r.status_code == 400, (r.status_code, r.content[:300])
    assert r.json() == {"code": "parse_error", "detail": TOO_DEEP}


def test_the_depth_walk():
    assert not nested_too_deep({}) and not nested_too_deep({"a": [1, {"b": []}]}, limit=4)
    assert nested_too_deep({"a": [1, {"b": []}]}, limit=3)
    assert not nested_too_deep(json.loads(_nested(MAX_JSON_DEPTH)))
    assert nested_too_deep(json.loads(_nested(MAX_JSON_DEPTH + 1)))
    assert not nested_too_deep({"a": list(range(10_000))}, limit=2)


def test_a_readers_autosave_and_heartbeat(t):
    m = t["reader"]
    read = services.open_read(m.user, reads_of(m).filter(opened_at__isnull=True).first())
    token, browser = _token(m.user), _browser(m.user)
    for name in ("autosave", "heartbeat"):
        url = reverse(f"reading-api:{name}", args=[read.public_id])
        for depth in DEEP:
            body = _nested(depth)
            _refused(token.post(url, body, content_type="application/json"))
            _refused(browser.post(url, body, content_type="application/json"))  # the lane falls through
            r = browser.post(url, body, content_type="application/json", HTTP_ACCEPT="application/json; indent=2")
            assert r.status_code == 400 and "Allow" in r and json.loads(r.content)["code"] == "parse_error"
    read.refresh_from_db()
    assert read.findings_text == "" and read.active_seconds < 1
    # At the limit: accepted by both paths alike (the unknown key ignored, as before).
    url = reverse("reading-api:autosave", args=[read.public_id])
    body = _nested(MAX_JSON_DEPTH, extra='"findings_text": "At the limit.", ')
    lane, api = browser.post(url, body, content_type="application/json"), token.post(url, body,
                                                                                      content_type="application/json")
    assert lane.status_code == api.status_code == 200 and "Allow" not in lane and "Allow" in api
    assert lane.json().keys() == api.json().keys() and lane.json()["status"] == api.json()["status"]
    assert Read.objects.get(pk=read.pk).findings_text == "At the limit."


def test_an_experts_rating_autosave(t):
    task = tasks_of(t, 0)[0]
    user = task.expert.user
    url = reverse("rating-autosave", args=[t["trial"].code, task.public_id])
    before = Rating.objects.values().get(pk=task.pk)
    for client in (_token(user), _browser(user)):
        for depth in DEEP:
            _refused(client.post(url, _nested(depth), content_type="application/json"))
    assert Rating.objects.values().get(pk=task.pk) == before
    # At the limit: parsed by both; an unknown field is the service's refusal, in the same words on both paths.
    body = _nested(MAX_JSON_DEPTH, extra='"comment": "ok", ')
    lane, api = (c.post(url, body, content_type="application/json") for c in (_browser(user), _token(user)))
    assert lane.status_code == api.status_code == 400 and lane.json() == api.json()
    assert lane.json()["code"] == "invalid"
    assert Rating.objects.values().get(pk=task.pk) == before


def test_an_amendment_and_a_coordinators_setup_endpoint(t):
    coordinator = t["coordinator"]
    submitted = Read.objects.filter(case=t["cases"][0], submitted_at__isnull=False).first()
    amend = reverse("reading-api:amend", args=[submitted.public_id])
    centers = f"/api/trials/{t['trial'].code}/centers/"
    n_centers = Center.objects.count()
    for client in (_token(coordinator), _browser(coordinator)):
        for depth in DEEP:
            _refused(client.post(amend, _nested(depth, "report"), content_type="application/json"))
            _refused(client.post(centers, _nested(depth, "name"), content_type="application/json"))
    assert not submitted.amendments.exists()
    assert Center.objects.count() == n_centers
