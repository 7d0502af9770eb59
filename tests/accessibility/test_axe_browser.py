"""axe-core (vendored in tests/vendor/axe-core) on every page of the app, as each role sees it: no serious or
critical violation (issue 17). The analysis page with results and the report are checked in
tests/analysis_app/test_browser.py, the sign-in-again panel in the session-expiry tests."""
from __future__ import annotations

import pytest
from django.urls import reverse

from rating.models import Rating
from reading.models import Read
from tests.browser import axe_violations, login
from tests.factories.imaging import add_drawn_image
from tests.factories.rating import complete_case
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial

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
    ai_reader, plain_reader = reader_in(t, "ai_assisted"), reader_in(t, "unassisted")
    code = t["trial"].code
    found: dict[str, list[str]] = {}

    def visit(pg, url: str, ready: str | None = None) -> None:
        pg.goto(live_server.url + url)
        pg.wait_for_load_state("networkidle")
        if ready:
            pg.wait_for_function(ready)
        problems = axe_violations(pg)
        if problems:
            found[url] = problems

    def as_user(username: str | None):
        ctx = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
        pg = ctx.new_page()
        pg.set_default_timeout(15000)
        if username:
            login(pg, live_server, username, PASSWORD)
        return ctx, pg

    ctx, pg = as_user(None)
    visit(pg, reverse("login"))
    ctx.close()

    ctx, pg = as_user(t["coordinator"].username)
    for url in (reverse("home"), reverse("trial:create"), reverse("trial:detail", args=[code]),
                reverse("trial:allocations", args=[code]), reverse("trial:audit", args=[code]),
                reverse("imports:upload", args=[code]), reverse("inference:drafts", args=[code]),
                reverse("analysis:page", args=[code]), "/no-such-page/"):
        visit(pg, url)
    ctx.close()

    viewer_ready = "window.cxrViewer && window.cxrViewer.source !== null"
    for reader in (ai_reader, plain_reader):
        ctx, pg = as_user(reader.user.username)
        visit(pg, reverse("reading:worklist", args=[code]))
        read = Read.objects.filter(reader=reader, submitted_at__isnull=True).first()
        visit(pg, reverse("reading:read", args=[code, read.public_id]), viewer_ready)
        pg.click("#submit-read")  # the refused submit: rows marked at fault, the message beside Submit
        problems = axe_violations(pg)
        if problems:
            found[pg.url + " (after a refused submit)"] = problems
        done = Read.objects.filter(reader__isnull=False, submitted_at__isnull=False, reader=reader).first()
        if done:
            visit(pg, reverse("reading:read", args=[code, done.public_id]), viewer_ready)
        ctx.close()
    ctx, pg = as_user(plain_reader.user.username)  # another reader's read: the 403 page
    visit(pg, reverse("reading:read", args=[code, Read.objects.filter(reader=ai_reader).first().public_id]))
    assert pg.inner_text("h1") == "Not allowed"
    ctx.close()

    ctx, pg = as_user(rating.expert.user.username)
    visit(pg, reverse("rating:worklist", args=[code]))
    visit(pg, reverse("rating:task", args=[code, rating.public_id]), "window.ratingViewer !== undefined")
    ctx.close()

    ctx, pg = as_user(t["statistician"].user.username)
    visit(pg, reverse("home"))
    visit(pg, reverse("analysis:page", args=[code]))
    ctx.close()

    assert not found, "\n".join(f"{url}:\n  " + "\n  ".join(p) for url, p in found.items())
