"""The blinded task pages' autosave over JSON, live in Chromium (rating/static/rating/blinded_task.js through
core/common.js's postJSON): the arena page's and the rating page's autosave requests are JSON objects with the CSRF
header and a plain-JSON Accept, answered 200 ``{saved: true, status}`` in JSON, and saved. The rating page's
autosave is answered by the light lane (core.light_api: no Allow header), the arena's by DRF. No screenshot."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from rating.models import ArenaTask, Rating
from rating.services import create_arena_tasks
from tests.browser import login, url_name
from tests.factories.imaging import add_drawn_image
from tests.factories.rating import complete_case, rating_trial
from tests.factories.trial import PASSWORD
from tests.rating.arena_support import arena_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAVED = "document.getElementById('save-state').textContent === 'Saved'"


def _autosave(page, name: str, action, expected: dict) -> dict:
    """Does ``action`` and checks the autosave request (URL name ``name``) whose body holds ``expected``: a JSON
    object with the CSRF header and a plain-JSON Accept, answered 200 {saved, status} in JSON. Returns the
    answer's headers."""

    def wanted(response) -> bool:
        if url_name(response.url) != name or not response.request.post_data:
            return False
        body = json.loads(response.request.post_data)
        return isinstance(body, dict) and expected.items() <= body.items()

    with page.expect_response(wanted, timeout=10000) as info:
        action()
    response = info.value
    headers = response.request.headers
    assert response.request.method == "POST" and headers["content-type"] == "application/json"
    assert headers.get("x-csrftoken") and headers.get("accept") == "application/json"
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"saved": True, "status": "in_progress"}
    return response.headers


def test_the_arena_page_autosaves_over_json(live_server, page, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = arena_trial(code="AJS", versions=2, cases=1, experts=1, panel=1)
    add_drawn_image(t["cases"][0], seed=0)
    create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    task = ArenaTask.objects.get(expert=t["experts"][0])
    login(page, live_server, t["experts"][0].user.username, PASSWORD)
    page.goto(live_server.url + reverse("arena:task", args=[t["trial"].code, task.public_id]))
    page.wait_for_selector("#viewer canvas")
    _autosave(page, "arena-autosave", lambda: page.check("input[name=preference][value=B]"), {"preference": "B"})
    _autosave(page, "arena-autosave", lambda: page.fill("#comment", "B is clearer."),
              {"preference": "B", "comment": "B is clearer."})
    page.wait_for_function(SAVED)
    task.refresh_from_db()
    assert (task.status, task.preference, task.comment) == ("in_progress", "B", "B is clearer.")


def test_the_rating_page_autosaves_over_json_through_the_lane(live_server, page, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = rating_trial(code="RJS", cases=1, panel=1, experts=1)
    add_drawn_image(t["cases"][0], seed=1)
    complete_case(t["cases"][0])
    task = Rating.objects.get(case=t["cases"][0])
    login(page, live_server, task.expert.user.username, PASSWORD)
    page.goto(live_server.url + reverse("rating:task", args=[t["trial"].code, task.public_id]))
    page.wait_for_selector("#viewer canvas")
    answer_headers = _autosave(page, "rating-autosave", lambda: page.check("input[name=preference][value=A]"),
                               {"preference": "A"})
    page.wait_for_function(SAVED)
    assert "allow" not in answer_headers  # the light lane answered (DRF's answers carry Allow)
    task.refresh_from_db()
    assert (task.status, task.preference) == ("in_progress", "A")
