"""Every page has the same navigation (issue 17): one bar, the same links in the same order for one person across
the trial's pages; the trial page is never wider than the screen at 1280 and 1440."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from analysis.models import AnalysisRun  # noqa: F401  (the analysis app's page is one of the pages)
from rating.models import Rating
from reading.models import Read
from tests.browser import assert_accessible, login, screenshot
from tests.factories.rating import complete_case
from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial.models import Membership

NAV = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="([^"]+)"[^>]*>([^<]+)</a>')


@pytest.fixture(autouse=True)
def _no_draft_tasks(monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)


def _nav(client, url) -> list[tuple[str, str]]:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    found = NAV.search(r.content.decode())
    assert found, url
    return LINK.findall(found.group(1))


def _world(code):
    t = make_trial(code=code, experts=2, expert_panel_size=2, preference_majority=2)
    cases = add_cases(t, 3)
    with_images_and_drafts(t, cases)
    complete_case(cases[0])
    return t, cases


@pytest.mark.django_db
def test_the_same_bar_on_every_page_for_each_role(client):
    t, cases = _world("NAV")
    code = t["trial"].code
    pages = {
        "coordinator": [reverse(n, args=[code]) for n in (
            "trial:detail", "trial:settings", "trial:allocations", "trial:audit", "trial:access_review",
            "trial:row_history", "trial:status", "imports:upload", "inference:drafts", "arena:setup", "analysis:page")]
        + [reverse("enrolment:case", args=[code, cases[0].pk])],
        "statistician": [reverse("analysis:page", args=[code])],
    }
    reader = reader_in(t, "unassisted")
    read = Read.objects.filter(reader=reader, submitted_at__isnull=True).first()
    pages["reader"] = [reverse("reading:worklist", args=[code]), reverse("reading:read", args=[code, read.public_id])]
    rating = Rating.objects.filter(case=cases[0]).first()
    pages["expert"] = [reverse("rating:worklist", args=[code]), reverse("rating:task", args=[code, rating.public_id])]
    users = {"coordinator": t["coordinator"], "statistician": t["statistician"].user, "reader": reader.user,
             "expert": rating.expert.user}
    bars = {}
    for role, urls in pages.items():
        client.force_login(users[role])
        seen = {url: _nav(client, url) for url in urls}
        first = next(iter(seen.values()))
        assert first, role
        for url, links in seen.items():
            assert links == first, (role, url, links, first)
        bars[role] = [label for _href, label in first]
        client.logout()
    assert bars["coordinator"] == ["Trial", "Settings", "Import cases", "Drafts", "Arena", "Allocations", "Audit log",
                                   "Access review", "Analysis"]
    assert bars["statistician"] == ["Analysis"]
    assert bars["reader"] == ["Worklist"] and bars["expert"] == ["Rating worklist"]


@pytest.mark.django_db
def test_the_current_page_is_marked(client):
    t, _ = _world("NAVCUR")
    client.force_login(t["coordinator"])
    html = client.get(reverse("trial:audit", args=[t["trial"].code])).content.decode()
    bar = NAV.search(html).group(1)
    assert f'href="{reverse("trial:audit", args=[t["trial"].code])}" aria-current="page"' in bar
    assert bar.count("aria-current") == 1
    assert 'aria-label="Audit"' in html  # the audit pages' own links sit in the page, not in the bar


@pytest.mark.django_db
def test_a_blinded_coordinator_is_linked_only_to_pages_that_open(client):
    """A coordinator who also rates (a membership made around the services' rules) is not shown the links whose pages
    refuse blinded participants (trial.blinding): every link in their bar opens; the plain coordinator keeps them."""
    t, cases = _world("NAVBL")
    code = t["trial"].code
    rating = Rating.objects.filter(case=cases[0]).first()
    Membership.objects.create(user=rating.expert.user, trial=t["trial"], role="coordinator")
    client.force_login(rating.expert.user)
    links = _nav(client, reverse("rating:worklist", args=[code]))
    labels = [label for _href, label in links]
    assert "Arena" not in labels and "Trial" in labels and "Rating worklist" in labels
    for href, label in links:
        assert client.get(href).status_code == 200, (label, href)
    assert client.get(reverse("arena:setup", args=[code])).status_code == 403  # the page's own rule, unchanged
    client.force_login(t["coordinator"])
    assert "Arena" in [label for _href, label in _nav(client, reverse("trial:detail", args=[code]))]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [{"width": 1280, "height": 720}, {"width": 1440, "height": 900}],
                         ids=["1280x720", "1440x900"])
def test_trial_page_is_not_wider_than_the_screen(live_server, page, size):
    t, cases = _world(f"NAVW{size['width']}")
    page.set_viewport_size(size)
    login(page, live_server, t["coordinator"].username, PASSWORD)
    for name in ("trial:detail", "trial:audit", "trial:settings", "analysis:page"):
        page.goto(live_server.url + reverse(name, args=[t["trial"].code]))
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], (name, width)
        if name == "trial:detail":
            assert_accessible(page, "trial page")
            screenshot(page, f"coordinator-trial-{size['width']}x{size['height']}")
