"""axe-core (vendored in tests/vendor/axe-core) on every page of the app, as each role sees it: no serious or
critical violation (issue 17), and a screenshot of each page at 1280x720 and 1440x900 in docs/screenshots/pages/
(named role-page-size). The analysis page with results and the report are checked in
tests/analysis_app/test_browser.py, the sign-in-again panel in the session-expiry tests."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from inference.selectors import arm_model_version
from inference.services import register_model_version, set_arena_model_versions
from rating.models import ArenaTask, Rating
from rating.services import amend_arena_task, create_arena_tasks, submit_arena_task
from reading.models import Read
from tests.browser import axe_violations, login
from tests.factories.imaging import add_drawn_image
from tests.factories.rating import complete_case
from tests.factories.reading import reader_in, ready_draft, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial.models import AuditEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_page_has_no_serious_or_critical_violation(live_server, browser):
    t = make_trial(code="AXE", centers=1, experts=1, expert_panel_size=1, preference_majority=1)
    cases = add_cases(t, 3)
    with_images_and_drafts(t, cases)
    complete_case(cases[0])
    for image in cases[0].images.all():
        image.delete()
    add_drawn_image(cases[0])
    rating = Rating.objects.get()
    # The standalone arena (issue 20 item 1): a second version's drafts of cases 1 and 2 (case 0 is the rating's).
    base = arm_model_version(t["arms"]["ai_assisted"])
    second = register_model_version(name="axe-arena-2", backend="retrieval")
    set_arena_model_versions(actor=t["coordinator"], trial=t["trial"], model_versions=[base, second])
    for c in cases[1:]:
        ready_draft(c, second, findings_text="Heart size normal. Lungs clear.", impression_text="Normal study.")
    create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    arena_task = ArenaTask.objects.filter(case=cases[1]).get()
    ai_reader, plain_reader = reader_in(t, "ai_assisted"), reader_in(t, "unassisted")
    code = t["trial"].code
    found: dict[str, list[str]] = {}
    shots = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "pages"
    shots.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    role = {"name": "anonymous"}

    def visit(pg, url: str, ready: str | None = None, name: str | None = None) -> None:
        pg.goto(live_server.url + url)
        pg.wait_for_load_state("networkidle")
        if ready:
            pg.wait_for_function(ready)
        problems = axe_violations(pg)
        if problems:
            found[url] = problems
        # Both sizes the issue names; the page is laid out again at each before the picture.
        stem = f"{role['name']}-{name or re.sub(r'[^a-z0-9]+', '-', url.lower()).strip('-') or 'home'}"
        for width, height in ((1280, 720), (1440, 900)):
            pg.set_viewport_size({"width": width, "height": height})
            path = shots / f"{stem}-{width}x{height}.png"
            pg.screenshot(path=str(path))
            taken.append(path)
        pg.set_viewport_size({"width": 1280, "height": 720})

    def as_user(username: str | None, who: str = "anonymous"):
        role["name"] = who
        ctx = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
        pg = ctx.new_page()
        pg.set_default_timeout(15000)
        if username:
            login(pg, live_server, username, PASSWORD)
        return ctx, pg

    ctx, pg = as_user(None)
    visit(pg, reverse("login"), name="login")
    visit(pg, reverse("password_reset"), name="password-reset")
    ctx.close()

    ctx, pg = as_user(t["coordinator"].username, "coordinator")
    entry = AuditEntry.objects.filter(trial=t["trial"]).order_by("pk").first()
    for name, url in (("home", reverse("home")), ("trial-new", reverse("trial:create")),
                      ("trial", reverse("trial:detail", args=[code])),
                      ("settings", reverse("trial:settings", args=[code])),
                      ("allocations", reverse("trial:allocations", args=[code])),
                      ("audit", reverse("trial:audit", args=[code])),
                      ("audit-entry", reverse("trial:audit_entry", args=[code, entry.pk])),
                      ("row-history", reverse("trial:row_history", args=[code])),
                      ("access-review", reverse("trial:access_review", args=[code])),
                      ("import", reverse("imports:upload", args=[code])),
                      ("case", reverse("enrolment:case", args=[code, cases[0].pk])),
                      ("drafts", reverse("inference:drafts", args=[code])),
                      ("arena-setup", reverse("arena:setup", args=[code])),
                      ("analysis", reverse("analysis:page", args=[code])), ("not-found", "/no-such-page/")):
        visit(pg, url, name=name)
    ctx.close()

    viewer_ready = "window.cxrViewer && window.cxrViewer.source !== null"
    for who, reader in (("reader-ai", ai_reader), ("reader-unassisted", plain_reader)):
        ctx, pg = as_user(reader.user.username, who)
        visit(pg, reverse("reading:worklist", args=[code]), name="worklist")
        read = Read.objects.filter(reader=reader, submitted_at__isnull=True).first()
        visit(pg, reverse("reading:read", args=[code, read.public_id]), viewer_ready, name="read")
        pg.click("#submit-read")  # the refused submit: rows marked at fault, the message beside Submit
        problems = axe_violations(pg)
        if problems:
            found[pg.url + " (after a refused submit)"] = problems
        done = Read.objects.filter(reader__isnull=False, submitted_at__isnull=False, reader=reader).first()
        if done:
            visit(pg, reverse("reading:read", args=[code, done.public_id]), viewer_ready, name="read-submitted")
        ctx.close()
    # Another reader's read: the 404 page (as an unknown id: its existence is not told; ninth session's probe
    # parity). A coordinator's page: the 403 page.
    ctx, pg = as_user(plain_reader.user.username, "reader")
    visit(pg, reverse("reading:read", args=[code, Read.objects.filter(reader=ai_reader).first().public_id]),
          name="not-found")
    assert pg.inner_text("h1") == "Not found"
    visit(pg, reverse("trial:settings", args=[code]), name="not-allowed")
    assert pg.inner_text("h1") == "Not allowed"
    ctx.close()

    ctx, pg = as_user(rating.expert.user.username, "expert")
    visit(pg, reverse("rating:worklist", args=[code]), name="worklist")
    visit(pg, reverse("rating:task", args=[code, rating.public_id]), "window.ratingViewer !== undefined",
          name="rating")
    visit(pg, reverse("arena:worklist", args=[code]), name="arena-worklist")
    visit(pg, reverse("arena:task", args=[code, arena_task.public_id]), "window.arenaViewer !== undefined",
          name="arena")
    # Amending the judgement (its expert): the page with one amendment in its history.
    submit_arena_task(arena_task.expert.user, arena_task, {"preference": "A", "quality_a": 4})
    amend_arena_task(actor=arena_task.expert.user, task=arena_task, answer={"preference": "tie"},
                     reason="On a second look the drafts are equal.")
    visit(pg, reverse("arena:amend", args=[code, arena_task.public_id]), name="arena-amend")
    ctx.close()

    # A coordinator amends the judgement too: the arena page's task table with its Amend link, the amendment page
    # (no drafts shown to a coordinator).
    ctx, pg = as_user(t["coordinator"].username, "coordinator")
    visit(pg, reverse("arena:setup", args=[code]), name="arena-setup-submitted")
    visit(pg, reverse("arena:amend", args=[code, arena_task.public_id]), name="arena-amend")
    ctx.close()

    ctx, pg = as_user(t["statistician"].user.username, "statistician")
    visit(pg, reverse("home"), name="home")
    visit(pg, reverse("analysis:page", args=[code]), name="analysis")
    ctx.close()

    # every page at both sizes, each a real picture (a PNG of the viewport's size)
    assert len(taken) == len(set(taken)) >= 50
    for path in taken:
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", path
        size = (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))
        assert size in ((1280, 720), (1440, 900)), (path, size)
    assert not found, "\n".join(f"{url}:\n  " + "\n  ".join(p) for url, p in found.items())
