"""Odd characters in what an insider puts in a URL (ninth session, helper attack).

Leaked, fixed: a NUL (`%00`) in a public id reached the id lookup and PostgreSQL refused it with a DataError: a 500
on every read, rating, arena and image route, API and pages. Public ids now have their own converter
(core.converters.OpaqueIdConverter: the alphabet `token_urlsafe` and `token_hex` write), so such a path matches no
route and is a plain 404, the answer a well-formed id that does not exist gets."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from reading.models import Read
from tests.clients import browser_client, token_client
from tests.factories.rating import rating_trial
from tests.factories.reading import reader_in, reads_of

pytestmark = pytest.mark.django_db

# NUL, quote, backslash, right-to-left override, an emoji, a lone surrogate (invalid UTF-8), far too long.
ODD = ["%00", "a%00b", "'", "%27%3B--", "%5C", "%E2%80%AE", "%F0%9F%98%80", "%ED%A0%80", "x" * 300]


@pytest.fixture(autouse=True)
def _no_drafts_task(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def _routes(code: str, pid: str) -> list[tuple[str, str, str]]:
    """(who, method, path) for every route that takes a public id."""
    return [
        ("reader", "get", f"/reading/{code}/read/{pid}/"), ("reader", "post", f"/reading/{code}/read/{pid}/submit/"),
        ("reader", "get", f"/reading/{code}/read/{pid}/amend/"),
        ("token", "get", f"/api/reading/reads/{pid}/"), ("token", "post", f"/api/reading/reads/{pid}/open/"),
        ("token", "post", f"/api/reading/reads/{pid}/submit/"), ("token", "post", f"/api/reading/reads/{pid}/amend/"),
        ("reader", "post", f"/api/reading/reads/{pid}/heartbeat/"),  # the light lane
        ("reader", "post", f"/api/reading/reads/{pid}/autosave/"),
        ("reader", "get", f"/reading/images/{pid}/meta.json"), ("reader", "get", f"/reading/images/{pid}/display.png"),
        ("reader", "get", f"/reading/images/{pid}/full.bin"),
        ("expert", "get", f"/rating/{code}/{pid}/"), ("expert", "get", f"/rating/{code}/{pid}/amend/"),
        ("expert", "get", f"/api/rating/{code}/{pid}/"), ("expert", "post", f"/api/rating/{code}/{pid}/open/"),
        ("expert", "post", f"/api/rating/{code}/{pid}/autosave/"),
        ("expert", "post", f"/api/rating/{code}/{pid}/submit/"),
        ("expert", "get", f"/arena/{code}/{pid}/"), ("expert", "get", f"/arena/{code}/{pid}/amend/"),
        ("expert", "get", f"/api/arena/{code}/{pid}/"), ("expert", "post", f"/api/arena/{code}/{pid}/autosave/"),
        ("expert", "post", f"/api/arena/{code}/{pid}/submit/"),
    ]


def test_odd_characters_in_a_public_id_are_a_404_never_a_500():
    t = rating_trial(code="ODD", cases=1)
    reader = reader_in(t, "unassisted")
    clients = {"reader": browser_client(reader.user), "token": token_client(reader.user),
               "expert": browser_client(t["experts"][0].user)}
    before = list(Read.objects.order_by("pk").values())
    for pid in ODD:
        for who, method, path in _routes("ODD", pid):
            c = clients[who]
            r = c.get(path) if method == "get" else c.post(path, json.dumps({}), content_type="application/json")
            assert r.status_code == 404, (path, r.status_code)
    assert list(Read.objects.order_by("pk").values()) == before
    # The converter takes every id the models make (reverse() checks the value against it).
    read = reads_of(reader)[0]
    assert clients["token"].get(reverse("reading-api:detail", args=[read.public_id])).status_code == 200


def test_a_nul_in_the_coordinators_filters_is_no_500():
    """The coordinator's row-history and drafts pages take free text from the query string."""
    t = rating_trial(code="ODQ", cases=1)
    c = browser_client(t["coordinator"])
    for url in (reverse("trial:row_history", args=["ODQ"]) + "?table=reads&row=%00&label=%00",
                reverse("trial:row_history", args=["ODQ"]) + "?row=a%00&label=%00",
                reverse("trial:audit", args=["ODQ"]) + "?action=%00&actor=%00",
                reverse("inference:drafts", args=["ODQ"]) + "?status=%00"):
        assert c.get(url).status_code < 500, url
