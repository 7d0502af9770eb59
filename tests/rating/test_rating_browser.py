"""Blinding in the browser (issue 6): every response an expert's browser receives during a full rating session,
and every expert API response, is searched for arm names and codes, model names, reader names and usernames,
read and draft ids, and the times of the reads. Also takes the screenshots docs/screenshots/rating*.png."""
import datetime as dt
import json
import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from inference.models import Draft, ModelVersion
from rating import selectors
from rating.models import Rating
from reading.models import Read
from tests.browser import NetworkLog, login, resolved, screenshot, url_name
from tests.factories.imaging import add_drawn_image
from tests.factories.rating import FIXED_READ_TIME, complete_case, rating_trial
from tests.factories.trial import PASSWORD
from trial.models import Arm

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FORBIDDEN_KEYS = re.compile(r'"[^"]*(arm|reader|draft|model|_at|time|seconds|seed|created)[^"]*"\s*:', re.I)


def forbidden_strings(t) -> list[str]:
    out = {"assisted", "ai_assisted", "unassisted", "standard care", "retrieval", "janus"}
    for arm in Arm.objects.filter(trial=t["trial"]):
        out |= {arm.code.lower(), arm.name.lower()}
    for mv in ModelVersion.objects.all():
        out |= {mv.name.lower(), mv.display_label.lower()}
    for m in t["readers"]:
        u = m.user
        out |= {u.username.lower(), u.first_name.lower(), u.last_name.lower(), u.email.lower()}
    reads = list(Read.objects.filter(case__trial=t["trial"]))
    out |= {r.public_id.lower() for r in reads}
    for r in reads:  # the reads' times, in the formats a page or API might print them
        for ts in (r.opened_at, r.submitted_at, r.autosaved_at, r.last_heartbeat_at, r.created_at):
            if ts is None:
                continue
            out |= {ts.isoformat().lower(), ts.strftime("%Y-%m-%dT%H:%M").lower(), str(int(ts.timestamp())),
                    ts.strftime("%H:%M:%S")}
    when = FIXED_READ_TIME
    out |= {"2023-02-17", "2023/02/17", "17/02/2023", "02/17/2023", "feb. 17, 2023", "february 17, 2023",
            "17 feb", "987.65", str(int(when.timestamp()))[:7]}
    return sorted(s for s in out if s)


def assert_blinded(label: str, text: str, forbidden: list[str]) -> None:
    low = text.lower()
    for s in forbidden:
        assert s not in low, f"{label} contains {s!r}"


def test_full_rating_session_leaks_nothing(live_server, page):
    t = rating_trial(code="BLIND", experts=2, panel=2, cases=3, ai_model=True)
    for i, m in enumerate(t["readers"]):
        m.user.first_name, m.user.last_name = f"Zebulon{i}", f"Quimbyreader{i}"
        m.user.save()
    for i, case in enumerate(t["cases"]):
        add_drawn_image(case, seed=i)
        complete_case(case, extra_for_ai=True, when=FIXED_READ_TIME + dt.timedelta(minutes=i))
    drafts = list(Draft.objects.filter(case__trial=t["trial"]))
    assert drafts and Read.objects.filter(draft__isnull=False).exists()
    expert = t["experts"][0].user
    tasks = list(Rating.objects.filter(expert=t["experts"][0]).order_by("order_key"))
    assert len(tasks) == 3
    forbidden = forbidden_strings(t)

    # -- a full session in the browser --------------------------------------------------------------------
    net = NetworkLog(page)
    login(page, live_server, expert.username, PASSWORD)
    page.goto(live_server.url + reverse("rating:worklist", args=[t["trial"].code]))
    page.click("#next-task")
    page.wait_for_selector("#viewer canvas")
    page.wait_for_load_state("networkidle")
    assert page.locator("#report-A").is_visible() and page.locator("#report-B").is_visible()
    page.click("#submit-rating")  # nothing chosen: a clear message, nothing sent
    assert "Please give a preference" in page.locator("#form-error").inner_text()
    page.check("input[name=preference][value=B]")
    page.check("input[name=quality_a][value='3']")
    page.check("input[name=quality_b][value='4']")
    page.fill("#comment", "B states the effusion more clearly.")
    page.wait_for_function("document.getElementById('save-state').textContent === 'Saved'")
    first = tasks[0]
    first.refresh_from_db()
    assert (first.preference, first.quality_a, first.quality_b) == ("B", 3, 4)
    page.reload()  # resume
    page.wait_for_selector("#viewer canvas")
    page.wait_for_load_state("networkidle")
    assert page.is_checked("input[name=preference][value=B]") and page.is_checked("input[name=quality_b][value='4']")
    assert page.input_value("#comment") == "B states the effusion more clearly."
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "rating")
    page.check("input[name=quality_a][value='4']")
    page.click("#submit-rating")
    page.wait_for_url(lambda u: url_name(u) == "rating:task"
                      and resolved(u).kwargs["public_id"] != first.public_id)
    page.wait_for_selector("#viewer canvas")
    page.check("input[name=preference][value=none]")
    page.wait_for_function("document.getElementById('save-state').textContent === 'Saved'")
    page.goto(live_server.url + reverse("rating:worklist", args=[t["trial"].code]))
    page.wait_for_load_state("networkidle")
    assert "1</strong> of <strong>3</strong> rated" in page.content()
    screenshot(page, "rating-worklist")
    first.refresh_from_db()
    assert (first.status, first.preference, first.quality_a, first.quality_b) == ("done", "B", 4, 4)

    urls = [u for u, _ in net.bodies]
    assert any(url_name(u) == "imaging:image-display" for u in urls), urls
    assert any(url_name(u) == "rating-autosave" for u in urls)
    for url, body in net.bodies:
        text = body.decode("utf-8", "replace")
        assert_blinded(url, text, forbidden)
        if (url_name(url) or "").startswith("rating"):  # a rating page or the rating API
            # any trial's reading pages (all share this prefix), so a text pattern, not one reverse()d URL
            assert not re.search(r"/reading/(?!images/)", text), f"{url} links to a reading page"
            assert "draft" not in text.lower(), url
        if url.endswith(".json") or urlsplit(url).path.startswith(reverse("api-root")):
            assert not FORBIDDEN_KEYS.search(text), f"{url}: {FORBIDDEN_KEYS.search(text).group(0)}"
    titles = set()
    for task in tasks:
        page.goto(live_server.url + reverse("rating:task", args=[t["trial"].code, task.public_id]))
        titles.add(page.title().replace(selectors.task_label(task), "<TASK>"))
        assert task.case.code not in page.content()  # the case code carries the center
    assert len(titles) == 1  # the title does not vary by arm (or anything but the opaque task label)

    # -- every expert API response ------------------------------------------------------------------------
    api = APIClient()
    api.force_login(expert)  # a session, like the browser's (the image views are plain Django views)
    base = reverse("rating-worklist", args=[t["trial"].code])
    responses = [api.get(base)]
    for task in tasks:
        def task_url(name, task=task):
            return reverse(name, args=[t["trial"].code, task.public_id])

        responses += [api.get(task_url("rating-task")), api.post(task_url("rating-open"))]
        responses.append(api.post(task_url("rating-autosave"), {"comment": "ok"}, format="json"))
        responses.append(api.post(task_url("rating-submit"),
                                  {"preference": "A", "quality_a": 5, "quality_b": 2}, format="json"))
        responses.append(api.post(task_url("rating-submit"), {"quality_a": 0}, format="json"))
        for im in task.case.images.all():
            responses.append(api.get(reverse("imaging:image-meta", args=[im.public_id])))
    responses.append(api.get(base))
    statuses = [r.status_code for r in responses]
    assert 200 in statuses and 409 in statuses
    for r in responses:
        text = r.content.decode("utf-8", "replace")
        assert_blinded(r.wsgi_request.path if hasattr(r, "wsgi_request") else "api", text, forbidden)
        assert not FORBIDDEN_KEYS.search(text), FORBIDDEN_KEYS.search(text).group(0)
        assert "draft" not in text.lower()
        assert r.status_code in (200, 400, 409), (r.status_code, text)
        json.loads(text)
    assert Rating.objects.filter(expert=t["experts"][0], status="done").count() == 3
