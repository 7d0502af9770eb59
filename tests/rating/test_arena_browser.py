"""The expert's arena page in the browser (issue 20 item 1): two drafts as A and B beside the case's image, the
keyboard (a, b, t choose the preference), autosave and resume, one submit; every response the browser receives is
searched for the model versions' names and the arms. Screenshot docs/screenshots/arena-expert-1280x720.png."""
from __future__ import annotations

import pytest
from django.urls import reverse

from rating.models import ArenaTask
from rating.services import create_arena_tasks
from tests.browser import NetworkLog, assert_accessible, assert_in_view, login, screenshot, url_name
from tests.factories.imaging import add_drawn_image
from tests.factories.trial import PASSWORD
from tests.rating.arena_support import arena_trial
from trial.models import Signature

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAVED = "document.getElementById('save-state').textContent === 'Saved'"


def test_expert_compares_two_drafts_with_the_keyboard(live_server, page, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = arena_trial(code="ABR", versions=3, cases=2, experts=1, panel=1)
    for i, case in enumerate(t["cases"]):
        add_drawn_image(case, seed=i)
    create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    tasks = list(ArenaTask.objects.filter(expert=t["experts"][0]).order_by("order_key", "public_id"))
    assert len(tasks) == 2
    first = tasks[0]
    forbidden = [mv.name.lower() for mv in t["versions"]] + ["ai_assisted", "unassisted", "standard care",
                                                              "retrieval"]

    page.set_viewport_size({"width": 1280, "height": 720})  # a laptop: the size the screenshot names
    net = NetworkLog(page)
    login(page, live_server, t["experts"][0].user.username, PASSWORD)
    page.goto(live_server.url + reverse("arena:worklist", args=[t["trial"].code]))
    assert_accessible(page, "arena worklist")
    page.click("#next-task")
    page.wait_for_selector("#viewer canvas")
    page.wait_for_load_state("networkidle")
    assert page.locator("#draft-A").is_visible() and page.locator("#draft-B").is_visible()
    assert_in_view(page, "#submit-arena")  # the answer stays in view at 1280x720
    page.click("#submit-arena")  # nothing chosen: a clear message, nothing sent
    assert "Please give a preference" in page.locator("#form-error").inner_text()
    page.locator("body").focus()
    page.keyboard.press("t")  # tie, from the keyboard
    assert page.is_checked("input[name=preference][value=tie]")
    page.wait_for_function(SAVED)
    page.keyboard.press("b")  # the focus is on the radio now: the keys still choose
    assert page.is_checked("input[name=preference][value=B]")
    page.check("input[name=quality_a][value='2']")
    page.fill("#comment", "B names the effusion.")
    page.locator("#comment").press("a")  # typing in the comment never changes the preference
    assert page.is_checked("input[name=preference][value=B]")
    page.fill("#comment", "B names the effusion.")
    page.wait_for_function(SAVED)
    first.refresh_from_db()
    assert (first.status, first.preference, first.quality_a, first.comment) == ("in_progress", "B", 2,
                                                                                 "B names the effusion.")
    page.reload()  # resume
    page.wait_for_selector("#viewer canvas")
    page.wait_for_load_state("networkidle")
    assert page.is_checked("input[name=preference][value=B]") and page.is_checked("input[name=quality_a][value='2']")
    assert_accessible(page, "arena task")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "arena-expert-1280x720")
    page.click("#submit-arena")
    page.wait_for_url(lambda u: url_name(u) == "arena:task" and tasks[1].public_id in u)
    first.refresh_from_db()
    assert (first.status, first.preference, first.quality_a, first.quality_b) == ("done", "B", 2, None)
    page.goto(live_server.url + reverse("arena:task", args=[t["trial"].code, first.public_id]))
    page.wait_for_load_state("networkidle")
    assert page.locator("#submit-arena").count() == 0  # submitted: read-only
    for url, body in net.bodies:
        text = body.decode("utf-8", "replace").lower()
        for s in forbidden:
            assert s not in text, f"{url} contains {s!r}"
    assert any(url_name(u) == "arena-autosave" for u, _ in net.bodies)


def test_a_signed_arena_judgement_asks_for_the_password(live_server, page, monkeypatch):
    """Trial.sign_submissions: the page's module sends the password with the submit, never with an autosave."""
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = arena_trial(code="ABS", versions=2, cases=1, experts=1, panel=1, sign_submissions=True)
    add_drawn_image(t["cases"][0], seed=0)
    create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    task = ArenaTask.objects.get(expert=t["experts"][0])
    login(page, live_server, t["experts"][0].user.username, PASSWORD)
    page.goto(live_server.url + reverse("arena:task", args=[t["trial"].code, task.public_id]))
    page.wait_for_selector("#viewer canvas")
    page.wait_for_load_state("networkidle")
    page.check("input[name=preference][value=A]")
    page.click("#submit-arena")  # no password: a clear message, nothing sent
    assert "Enter your password" in page.locator("#form-error").inner_text()
    task.refresh_from_db()
    assert task.status != ArenaTask.Status.DONE
    page.fill("#signature-password", PASSWORD)
    page.click("#submit-arena")
    page.wait_for_url(lambda u: url_name(u) == "arena:worklist")
    task.refresh_from_db()
    assert task.status == ArenaTask.Status.DONE and task.preference == "A"
    assert Signature.objects.filter(object_id=str(task.pk), signer=t["experts"][0].user).exists()
