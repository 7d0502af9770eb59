"""A session that ends mid-judgement on the arena page (as on the rating page, issue 17; both over
rating/static/rating/blinded_task.js): autosave says the session ended, the expert signs in again in place, the
answer is saved and then submitted with the new CSRF token. Leaving the page with an answer not yet saved asks first
(beforeunload); once saved it does not."""
from __future__ import annotations

import pytest
from django.urls import reverse

from rating.models import ArenaTask
from rating.services import create_arena_tasks
from tests.browser import assert_accessible, end_session, login, url_name
from tests.factories.imaging import add_drawn_image
from tests.factories.trial import PASSWORD
from tests.rating.arena_support import arena_trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAVED = "document.getElementById('save-state').textContent === 'Saved'"
# A beforeunload event as the browser sends it on leaving: the page's guard cancels it when an answer is unsaved.
UNLOAD_CANCELLED = """() => { const e = new Event("beforeunload", {cancelable: true});
  window.dispatchEvent(e); return e.defaultPrevented; }"""


def test_session_ends_mid_judgement_the_expert_signs_in_again_in_place_and_unsaved_answers_guard_unload(
        live_server, page, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = arena_trial(code="AEXP", versions=2, cases=2, experts=1, panel=1)
    for i, case in enumerate(t["cases"]):
        add_drawn_image(case, seed=i)
    create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    task = ArenaTask.objects.filter(expert=t["experts"][0]).order_by("order_key", "public_id").first()
    login(page, live_server, t["experts"][0].user.username, PASSWORD)
    page.goto(live_server.url + reverse("arena:task", args=[t["trial"].code, task.public_id]))
    page.wait_for_selector("#viewer canvas")
    page.check("input[name=preference][value=B]")
    page.wait_for_function(SAVED)
    assert page.evaluate(UNLOAD_CANCELLED) is False  # saved: leaving asks nothing

    end_session(page)
    page.check("input[name=quality_a][value='2']")
    page.locator("#session-ended").wait_for(state="visible")
    page.wait_for_function("document.getElementById('save-state').textContent.startsWith('Session ended')")
    assert "Offline" not in page.inner_text("body")
    assert page.evaluate(UNLOAD_CANCELLED) is True  # unsaved: leaving asks first
    assert_accessible(page, "the arena page with the sign-in-again panel")
    page.check("input[name=quality_b][value='5']")  # still answering while signed out
    page.fill("#comment", "Typed while signed out.")
    assert page.inner_text("#save-state").startswith("Session ended")
    page.click("#submit-arena")
    page.wait_for_function("document.getElementById('form-error').textContent.startsWith('Your session has ended')")
    task.refresh_from_db()
    assert (task.preference, task.quality_a) == ("B", None)

    page.fill("#session-ended input[name=password]", PASSWORD)
    page.click("#session-ended button[type=submit]")
    page.locator("#session-ended").wait_for(state="detached")
    page.wait_for_function(SAVED)
    task.refresh_from_db()
    assert (task.preference, task.quality_a, task.quality_b, task.comment) == ("B", 2, 5, "Typed while signed out.")
    assert page.inner_text("#form-error") == ""
    assert page.evaluate(UNLOAD_CANCELLED) is False

    page.click("#submit-arena")
    page.wait_for_url(lambda u: url_name(u) == "arena:task" and task.public_id not in u)
    task.refresh_from_db()
    assert task.status == ArenaTask.Status.DONE

    # The browser's own dialog: an answer typed and not yet saved (the comment waits 1.5 s), then the tab closes.
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.type), d.accept()))
    page.wait_for_selector("#viewer canvas")
    page.fill("#comment", "Not saved yet.")
    page.close(run_before_unload=True)
    page.wait_for_event("close")
    assert dialogs == ["beforeunload"]
