"""The light lane (core.light_api; docs/performance.md "The light lane"): a browser's heartbeat and autosave are
answered without DRF, and only when the full path would answer the same success. Checked over HTTP through every
middleware, against the full path (the same request signed in by token, which the lane never takes): the same
bodies, the same refusals in the API's words, CSRF enforced, a deactivated user or a changed password signed out,
nothing written by a refused request, and the signed-in user loaded by core.auth.ModelBackend exactly as Django's
backend loads it. Real PostgreSQL, committed transactions."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.auth import ModelBackend
from core.errors import InvalidInput
from rating import services as rating_services
from rating.models import Rating
from reading import services
from reading.models import Read
from tests.clients import browser_client as _browser
from tests.clients import token_client as _token
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial
from trial.models import Trial

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def t(transactional_db):
    t = make_trial(code="LANE")
    cases = add_cases(t, 4)
    with_images_and_drafts(t, cases, size=64)
    t["reader"] = reader_in(t, "unassisted")
    t["other"] = reader_in(t, "ai_assisted")
    return t


def _opened(m) -> Read:
    read = services.open_read(m.user, reads_of(m).filter(opened_at__isnull=True).first())
    # an open a while ago, so that every beat below is credited in full (the cap is the wall time since the last)
    Read.objects.filter(pk=read.pk).update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    return read


def _post(client, name: str, public_id: str, body, raw: str | None = None):
    data = raw if raw is not None else json.dumps(body)
    return client.post(reverse(f"reading-api:{name}", args=[public_id]), data, content_type="application/json")


def _light(r) -> bool:
    """Whether the light lane answered: DRF's responses carry an Allow header, the lane's none."""
    return "Allow" not in r


def test_the_lane_answers_what_the_api_answers(t):
    m = t["reader"]
    a, b = _opened(m), _opened(m)
    browser, token = _browser(m.user), _token(m.user)
    for name, body in (("heartbeat", {"seconds": 4}), ("autosave", {"findings_text": "Clear.", "seconds": 2})):
        via_lane, via_api = _post(browser, name, a.public_id, body), _post(token, name, b.public_id, body)
        assert via_lane.status_code == via_api.status_code == 200
        assert _light(via_lane) and not _light(via_api)
        lane, api = via_lane.json(), via_api.json()
        assert set(lane) == set(api) and lane["status"] == api["status"] == "in_progress"
        assert lane["submitted"] is api["submitted"] is False
        if name == "autosave":
            assert lane["autosaved_at"] and api["autosaved_at"]
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.findings_text == b.findings_text == "Clear."
    # 4 s credited by the beat; the autosave's 2 s capped by the wall time since that beat (the same rule both ways)
    assert 4 <= a.active_seconds < 6 and 4 <= b.active_seconds < 6
    # The security headers of every response (CSP, framing, sniffing) are on the lane's answers too.
    r = _post(browser, "heartbeat", a.public_id, {"seconds": 1})
    assert _light(r) and r["X-Frame-Options"] == "DENY" and "default-src" in r["Content-Security-Policy"]
    assert r["X-Content-Type-Options"] == "nosniff"


def test_refusals_are_the_apis_and_write_nothing(t):
    m, other = t["reader"], t["other"]
    read = _opened(m)
    theirs = _opened(other)
    theirs_text = Read.objects.get(pk=theirs.pk).findings_text  # an AI read: the draft's text, pre-filled at open
    browser, token = _browser(m.user), _token(m.user)
    cases = [
        ("heartbeat", theirs.public_id, {"seconds": 3}, None),  # another reader's read
        ("autosave", theirs.public_id, {"findings_text": "Mine."}, None),
        ("heartbeat", "no-such-read", {"seconds": 3}, None),
        ("heartbeat", read.public_id, {"seconds": -1}, None),  # invalid seconds
        ("heartbeat", read.public_id, None, "[1, 2]"),  # not an object
        ("heartbeat", read.public_id, None, '{"seconds": NaN}'),  # not JSON (DRF's parser refuses NaN)
        ("autosave", read.public_id, {"findings_text": 7}, None),
        ("autosave", read.public_id, {"finding_marks": {"no_such_finding": {"present": True}}}, None),
    ]
    for name, pid, body, raw in cases:
        lane, api = _post(browser, name, pid, body, raw), _post(token, name, pid, body, raw)
        assert lane.status_code == api.status_code and lane.status_code in (400, 403, 404), (name, body, raw)
        assert lane.json() == api.json()
    for r, text in ((read, ""), (theirs, theirs_text)):
        r.refresh_from_db()
        assert r.findings_text == text and r.active_seconds < 1
    Trial.objects.filter(pk=t["trial"].pk).update(status=Trial.Status.LOCKED)
    for name, body in (("heartbeat", {"seconds": 3}), ("autosave", {"findings_text": "Late."})):
        lane, api = _post(browser, name, read.public_id, body), _post(token, name, read.public_id, body)
        assert lane.status_code == api.status_code == 409 and lane.json() == api.json()
    read.refresh_from_db()
    assert read.findings_text == "" and read.active_seconds < 1


def test_csrf_is_enforced(t):
    m = t["reader"]
    read = _opened(m)
    r = _post(_browser(m.user, csrf=False), "autosave", read.public_id, {"findings_text": "Forged."})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    forged = _browser(m.user)
    forged.defaults["HTTP_X_CSRFTOKEN"] = "b" * 32  # a header that does not match the cookie
    assert _post(forged, "heartbeat", read.public_id, {"seconds": 5}).status_code == 403
    read.refresh_from_db()
    assert read.findings_text == "" and read.active_seconds < 1
    assert _post(_browser(m.user), "heartbeat", read.public_id, {"seconds": 5}).status_code == 200


def test_a_deactivated_user_or_a_changed_password_ends_the_session(t):
    m = t["reader"]
    read = _opened(m)
    browser = _browser(m.user)
    assert _post(browser, "heartbeat", read.public_id, {"seconds": 2}).status_code == 200
    m.user.set_password("a-new-password-1234")
    m.user.save()
    r = _post(browser, "heartbeat", read.public_id, {"seconds": 2})
    assert r.status_code in (401, 403) and not _light(r)
    browser = _browser(m.user)
    assert _post(browser, "heartbeat", read.public_id, {"seconds": 2}).status_code == 200
    type(m.user).objects.filter(pk=m.user.pk).update(is_active=False)
    r = _post(browser, "autosave", read.public_id, {"findings_text": "After deactivation."})
    assert r.status_code in (401, 403) and not _light(r)
    read.refresh_from_db()
    assert read.findings_text == "" and 2 <= read.active_seconds < 4.5  # the two accepted beats only


def test_other_writes_and_token_clients_take_the_full_path(t):
    m = t["reader"]
    read = _opened(m)
    browser = _browser(m.user)
    r = browser.post(reverse("reading-api:open", args=[read.public_id]), "{}", content_type="application/json")
    assert r.status_code == 200 and not _light(r)  # not a light route
    r = browser.post(reverse("reading-api:heartbeat", args=[read.public_id]), {"seconds": "2"})  # a form
    assert r.status_code == 200 and not _light(r)
    assert not _light(_post(_token(m.user), "heartbeat", read.public_id, {"seconds": 1}))


def test_the_backend_loads_the_user_as_djangos_does(t):
    user = t["reader"].user
    ours, django = ModelBackend().get_user(user.pk), DjangoModelBackend().get_user(user.pk)
    fields = [f.attname for f in type(user)._meta.concrete_fields]
    assert [getattr(ours, f) for f in fields] == [getattr(django, f) for f in fields]
    assert ours._state.db == django._state.db and ours._state.adding is False
    assert ours.get_session_auth_hash() == django.get_session_auth_hash()
    assert ModelBackend().get_user(10 ** 9) is None and ModelBackend().get_user("not-a-number") is None
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert ModelBackend().get_user(user.pk) is None


# -- an expert's autosave ----------------------------------------------------------------------------------------
@pytest.fixture
def rated(transactional_db, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = rating_trial(code="LANER", cases=2, panel=2, experts=2)
    for case in t["cases"]:
        complete_case(case)
    return t, tasks_of(t, 0) + tasks_of(t, 1)


def _rate(client, t, task, body, raw: str | None = None):
    url = reverse("rating-autosave", args=[t["trial"].code, task.public_id])
    return client.post(url, raw if raw is not None else json.dumps(body), content_type="application/json")


def test_an_experts_autosave_takes_the_lane_with_the_apis_answers(rated):
    t, tasks = rated
    mine = [x for x in tasks if x.expert_id == tasks[0].expert_id]
    theirs = next(x for x in tasks if x.expert_id != tasks[0].expert_id)
    user = mine[0].expert.user
    browser, token = _browser(user), _token(user)
    body = {"quality_a": "4", "comment": "  Clear.  ", "preference": "a"}
    lane, api = _rate(browser, t, mine[0], body), _rate(token, t, mine[1], body)
    assert lane.status_code == api.status_code == 200 and _light(lane) and not _light(api)
    assert lane.json() == api.json() == {"saved": True, "status": "in_progress"}
    for task in mine[:2]:
        task.refresh_from_db()
        assert (task.quality_a, task.comment, task.preference) == (4, "Clear.", "A")
    before = {x.pk: Rating.objects.values().get(pk=x.pk) for x in (mine[0], theirs)}
    refused = [(mine[0], {"quality_a": 9}, None), (mine[0], {"stars": 5}, None), (mine[0], None, "[]"),
               (theirs, {"quality_a": 3}, None)]  # another expert's task: 404, its existence not revealed
    for task, body, raw in refused:
        lane, api = _rate(browser, t, task, body, raw), _rate(token, t, task, body, raw)
        assert lane.status_code == api.status_code and lane.status_code in (400, 404) and lane.json() == api.json()
    reader = _browser(reader_in(t, "unassisted").user)
    assert _rate(reader, t, mine[0], {"quality_a": 2}).status_code == 403  # not an expert of the trial
    Trial.objects.filter(pk=t["trial"].pk).update(status=Trial.Status.LOCKED)
    lane, api = _rate(browser, t, mine[0], {"quality_a": 2}), _rate(token, t, mine[0], {"quality_a": 2})
    assert lane.status_code == api.status_code == 409 and lane.json() == api.json()
    assert {x.pk: Rating.objects.values().get(pk=x.pk) for x in (mine[0], theirs)} == before


def test_an_experts_own_open_task_is_saved_in_two_statements_with_the_general_rules(rated):
    t, tasks = rated
    code = t["trial"].code
    mine = [x for x in tasks if x.expert_id == tasks[0].expert_id]
    theirs = next(x for x in tasks if x.expert_id != tasks[0].expert_id)
    user = mine[0].expert.user
    with CaptureQueriesContext(connection) as q:
        status = rating_services.autosave_own_rating(user, trial_code=code, public_id=mine[0].public_id,
                                                     data={"quality_b": "5", "preference": "b"})
    statements = [x["sql"] for x in q.captured_queries if x["sql"] not in ("BEGIN", "COMMIT")]
    assert status == "in_progress" and len(statements) == 2  # the locked row with its checks; the update
    task = Rating.objects.get(pk=mine[0].pk)
    assert (task.quality_b, task.preference, task.status) == (5, "B", "in_progress")
    assert task.opened_at is not None and task.autosaved_at is not None
    opened = task.opened_at
    rating_services.autosave_own_rating(user, trial_code=code, public_id=mine[0].public_id, data={"comment": " x "})
    task.refresh_from_db()
    assert task.opened_at == opened and task.comment == "x" and task.quality_b == 5  # opened once, the rest kept
    before = Rating.objects.values().get(pk=mine[0].pk)
    with pytest.raises(InvalidInput):
        rating_services.autosave_own_rating(user, trial_code=code, public_id=mine[0].public_id,
                                            data={"blinding_guess": "A"})  # this trial does not ask it
    assert Rating.objects.values().get(pk=mine[0].pk) == before
    # Not the expert's own open task in this trial: no row, the general path answers (404, 403, 409).
    for kwargs in ({"trial_code": code, "public_id": theirs.public_id}, {"trial_code": "OTHER", "public_id":
                   mine[0].public_id}, {"trial_code": code, "public_id": "no-such-task"}):
        assert rating_services.autosave_own_rating(user, data={"comment": "no"}, **kwargs) is None
    Rating.objects.filter(pk=mine[1].pk).update(status="done")
    assert rating_services.autosave_own_rating(user, trial_code=code, public_id=mine[1].public_id,
                                               data={"comment": "late"}) is None
    Trial.objects.filter(pk=t["trial"].pk).update(status=Trial.Status.LOCKED)
    assert rating_services.autosave_own_rating(user, trial_code=code, public_id=mine[0].public_id,
                                               data={"comment": "locked"}) is None
    assert Rating.objects.get(pk=mine[0].pk).comment == "x"
def test_the_lane_reads_the_body_and_answers_the_media_type_as_drf_does(t):
    """The lane parses the body in the declared charset (a UTF-8 BOM or an undeclared UTF-16 body is DRF's 400;
    latin-1 text is saved as DRF decodes it) and answers only a request that accepts JSON without parameters
    (DRF answers application/xml with a 406 that writes nothing, text/html or ?format=api with its HTML page).
    A body nested past Python's recursion limit goes down the full path rather than breaking in the lane."""
    m = t["reader"]
    a, b = _opened(m), _opened(m)
    browser, token = _browser(m.user), _token(m.user)
    url = lambda r, name="autosave": reverse(f"reading-api:{name}", args=[r.public_id])  # noqa: E731

    def both(data: bytes, ct="application/json", query="", **extra):
        x = browser.generic("POST", url(a) + query, data, content_type=ct, **extra)
        y = token.generic("POST", url(b) + query, data, content_type=ct, **extra)
        xa, yb = Read.objects.get(pk=a.pk), Read.objects.get(pk=b.pk)
        return x, y, xa.findings_text, yb.findings_text

    for data, ct in ((b'\xef\xbb\xbf{"findings_text": "bom"}', "application/json"),
                     ('{"findings_text": "u16"}'.encode("utf-16"), "application/json"),
                     ('{"findings_text": "é"}'.encode(), "application/json; charset=latin-1")):
        x, y, lane_text, api_text = both(data, ct)
        assert x.status_code == y.status_code and lane_text == api_text, (data, ct, x.content, y.content)
        assert x["Content-Type"] == y["Content-Type"]
    for accept, query in (("application/xml", ""), ("text/html", ""), ("application/json; indent=4", ""),
                          ("application/json", "?format=api")):
        x, y, lane_text, api_text = both(b'{"findings_text": "' + accept.encode() + b'"}', query=query,
                                         HTTP_ACCEPT=accept)
        assert not _light(x) and x.status_code == y.status_code and lane_text == api_text, (accept, query)
    x = browser.post(url(a, "heartbeat"), b'{"seconds": 1}', content_type="application/json",
                     HTTP_ACCEPT="application/json")
    assert _light(x) and x.status_code == 200 and "Accept" in x["Vary"] and "Cookie" in x["Vary"]
    deep = b'{"seconds": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    r = browser.post(url(a, "heartbeat"), deep, content_type="application/json")  # core.parsers: the full path's 400
    assert not _light(r) and r.status_code == 400 and r.json()["code"] == "parse_error"


_ODD_READ_BODIES = [
    {"seconds": "1_0"}, {"seconds": True}, {"seconds": [1]}, {"seconds": {"a": 1}}, {"seconds": 1e400},
    {"seconds": "  3 "}, {"findings_text": None}, {"findings_text": "nul\u0000byte"}, {"impression_text": ["a"]},
    {"finding_marks": []}, {"finding_marks": "x"}, {"finding_marks": {"x": 1}}, {"box_reviews": "x"},
    {"box_reviews": [{"id": 1}]}, {"findings_text": "x" * 200_000}, {"": 1}, {"findings_text": "\ud800"},
]
_ODD_RATING_BODIES = [
    {"quality_a": True}, {"quality_a": 3.5}, {"quality_a": "3"}, {"quality_a": 1e400}, {"comment": {"x": 1}},
    {"comment": "nul\u0000byte"}, {"preference": ["A"]}, {"blinding_guess": 1}, {"quality_b": None},
    {"comment": "\ud800"}, {"comment": "x" * 200_000},
]


def test_odd_bodies_are_answered_alike_by_the_lane_and_the_api(t, rated):
    """A differential check of odd JSON objects, session + CSRF (the lane) against token (the full path): the same
    status, the same refusal, the same row, never a server error (the API fuzz signs in by token only)."""
    m = t["reader"]
    browser, token = _browser(m.user), _token(m.user)
    problems = []
    for name in ("heartbeat", "autosave"):
        for body in _ODD_READ_BODIES:
            a, b = _opened(m), _opened(m)  # noqa: F841 - fresh reads each time (the fixture's 4 cases run out)
            Read.objects.filter(pk__in=[a.pk, b.pk]).update(findings_text="", active_seconds=0)
            raw = json.dumps(body)
            lane, api = _post(browser, name, a.public_id, None, raw), _post(token, name, b.public_id, None, raw)
            ra, rb = Read.objects.get(pk=a.pk), Read.objects.get(pk=b.pk)
            same = (lane.status_code == api.status_code < 500 and (lane.status_code == 200 or lane.json() == api.json())
                    and (ra.findings_text, ra.impression_text) == (rb.findings_text, rb.impression_text))
            if not same:
                problems.append((name, str(body)[:60], lane.status_code, api.status_code, lane.content[:120]))
            Read.objects.filter(pk__in=[a.pk, b.pk]).update(opened_at=None, status=Read.Status.TODO)
    rt, tasks = rated
    mine = [x for x in tasks if x.expert_id == tasks[0].expert_id]
    user = mine[0].expert.user
    eb, et = _browser(user), _token(user)
    for body in _ODD_RATING_BODIES:
        raw = json.dumps(body)
        lane, api = _rate(eb, rt, mine[0], None, raw), _rate(et, rt, mine[1], None, raw)
        fields = ("quality_a", "quality_b", "comment", "preference", "blinding_guess")
        ra, rb = (Rating.objects.values(*fields).get(pk=x.pk) for x in mine[:2])
        if not (lane.status_code == api.status_code < 500 and ra == rb
                and (lane.status_code == 200 or lane.json() == api.json())):
            problems.append(("rating", str(body)[:60], lane.status_code, api.status_code, lane.content[:120]))
    assert not problems, "\n".join(map(str, problems))
