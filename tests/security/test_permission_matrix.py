"""Permission matrix (issue 8): every URL pattern the resolver knows, for every role, GET and POST.

The routes come from `django.urls.get_resolver()` (tests/security/routes.py), never from a hand list; EXPECTED below
says, per route name (or pattern string when the route has no name), what each role must get. A route without an
entry fails `test_every_route_has_expectations`: add one when you add a route.

Roles: anonymous; coordinator, reader (of the unassisted arm), expert, statistician of trial PM; outsider = the
coordinator of another trial (staff, may create trials); superuser (admin routes only). The path kwargs are
objects of PM (tests/security/matrix_support.py). Every response is also scanned: no role ever receives the
allocation list's seed or salt or the trial secret; the unassisted reader never receives draft text; the expert never
receives an arm code or name, a model name or a reader's name.
"""
from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.urls import resolve, reverse

from inference.selectors import arm_model_version
from tests.factories.reading import DRAFT_FINDINGS, DRAFT_IMPRESSION
from tests.security.conftest import ADMIN_ROLES, ROLES
from tests.security.matrix_support import body_of, client_for, kwargs_for
from tests.security.routes import all_routes

pytestmark = pytest.mark.django_db

ROUTES = all_routes()


def roles(default, **overrides) -> dict:
    """Expected statuses for every role: `default`, except the roles named."""
    unknown = set(overrides) - set(ADMIN_ROLES)
    assert not unknown, unknown
    return {r: overrides.get(r, default) for r in ADMIN_ROLES}


# Shorthands for the common shapes.
def page_only(**allowed) -> dict:
    """A login-required page: anonymous is sent to the login page, non-members get 403."""
    return roles(403, anonymous=302, **allowed)


def page_post_only(**allowed) -> dict:
    """GET of a POST-only page view: 405 for everyone logged in (the method is refused before the role check)."""
    return roles(405, anonymous=302, **allowed)


def api_only(**allowed) -> dict:
    """An API route: anonymous gets 401 with a `WWW-Authenticate: Token` challenge, others 403."""
    return roles(403, anonymous=401, **allowed)


def read_page(**allowed) -> dict:
    """A page of one read or image: anyone but its reader (and, to amend or view images, a coordinator) gets the 404
    of an unknown id, so a probe of someone else's id learns nothing (tests/security/test_probe_parity.py)."""
    return roles(404, anonymous=302, **allowed)


def read_api(**allowed) -> dict:
    """The API of one read: as read_page (401 for anonymous)."""
    return roles(404, anonymous=401, **allowed)


def api_refuses_method(**overrides) -> dict:
    """An API route that does not take this method: 405 once authenticated."""
    return roles(405, anonymous=401, **overrides)


EXPECTED: dict[str, dict[str, dict]] = {
    # --- accounts and home
    "home": {"GET": roles(200, anonymous=302), "POST": roles(200, anonymous=302)},
    "login": {"GET": roles(200), "POST": roles(200)},  # POST without credentials: the form again, with errors
    "logout": {"GET": roles(405, anonymous=302), "POST": roles(302)},
    # password reset (and the invitation's set-password link), open to everyone; an empty POST shows the form again
    "password_reset": {"GET": roles(200), "POST": roles(200)},
    "password_reset_done": {"GET": roles(200), "POST": roles(405)},
    "password_reset_confirm": {"GET": roles(200), "POST": roles(200)},  # a made-up token: "link used or expired"
    "password_reset_complete": {"GET": roles(200), "POST": roles(405)},
    # --- coordinator pages (trial:*), imports, drafts
    "trial:create": {"GET": page_only(coordinator=200, outsider=200), "POST": page_only(coordinator=200, outsider=200)},
    "trial:detail": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=200)},
    "trial:center_add": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    # Setup editing (issue 17): POST-only forms that redirect back to the trial page with a message.
    "trial:settings": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=400)},
    "trial:center_edit": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:center_remove": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:arm_edit": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:arm_remove": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:member_edit": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:member_remove": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "enrolment:reminders": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:arm_add": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:member_add": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:case_add": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:allocation_generate": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:allocations": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=200)},
    "trial:enrol_reader": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:enrol_case": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:enrol_all": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "trial:status": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=302)},
    "trial:audit": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=200)},
    "trial:audit_entry": {"GET": page_only(coordinator=200), "POST": page_post_only()},
    "trial:audit_export": {"GET": page_only(coordinator=200), "POST": page_post_only()},
    "trial:audit_verify": {"GET": page_post_only(), "POST": page_only(coordinator=200)},
    "trial:row_history": {"GET": page_only(coordinator=200), "POST": page_post_only()},
    "trial:access_review": {"GET": page_only(coordinator=200), "POST": page_post_only()},
    "trial:access_review_export": {"GET": page_only(coordinator=200), "POST": page_post_only()},
    "enrolment:case": {"GET": page_only(coordinator=200), "POST": page_post_only()},
    "enrolment:case_exclude": {"GET": page_post_only(), "POST": page_only(coordinator=302)},  # no reason: refused
    "imports:upload": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=200)},
    "imports:review": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    "inference:drafts": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=200)},
    "inference:retry": {"GET": page_post_only(), "POST": page_only(coordinator=302)},
    # --- images: coordinators and the case's readers/experts; this image's case (1) has no rating task and the
    # reader's read of it is elsewhere, so only the coordinator may see it
    "imaging:image-meta": {"GET": read_page(coordinator=200), "POST": page_post_only()},
    "imaging:image-display": {"GET": read_page(coordinator=200), "POST": page_post_only()},
    "imaging:image-full": {"GET": read_page(coordinator=200), "POST": page_post_only()},
    # --- reader pages
    "reading:worklist": {"GET": page_only(reader=200), "POST": page_only(reader=200)},
    "reading:next": {"GET": page_only(reader=302), "POST": page_only(reader=302)},
    "reading:read": {"GET": read_page(reader=200), "POST": read_page(reader=200)},
    "reading:submit": {"GET": page_post_only(), "POST": read_page(reader=302)},
    # issue 18 amendment pages, the author or a coordinator: the fixture's read is not submitted (409 on the page,
    # also for the empty POST: the service refuses an unsubmitted read before asking for the reason)
    "reading:amend": {"GET": read_page(reader=409, coordinator=409), "POST": read_page(reader=409, coordinator=409)},
    # --- expert pages
    "rating:worklist": {"GET": page_only(expert=200), "POST": page_only(expert=200)},
    "rating:task": {"GET": page_only(expert=200), "POST": page_only(expert=400)},  # POST without an answer: 400
    # the fixture's task is not submitted: GET sends the expert to the task page and tells a coordinator why (409),
    # the empty POST is refused (409) for both
    "rating:amend": {"GET": page_only(expert=302, coordinator=409), "POST": page_only(expert=409, coordinator=409)},
    # --- the standalone arena's expert pages (issue 20 item 1): the worklist takes GET only; the task page's POST
    # without an answer lacks the preference (400)
    "arena:worklist": {"GET": page_only(expert=200), "POST": page_post_only()},
    "arena:task": {"GET": page_only(expert=200), "POST": page_only(expert=400)},
    # The coordinator's arena page: POST without an action is refused with the page again (400).
    "arena:setup": {"GET": page_only(coordinator=200), "POST": page_only(coordinator=400)},
    # Amending an arena judgement: its expert or a coordinator (as rating:amend); the world's task is not submitted
    # yet: GET sends the expert to the task and tells the coordinator why (409); the empty POST is 409 not_submitted
    # for both. Another trial's coordinator (outsider), the reader and the statistician: 403.
    "arena:amend": {"GET": page_only(expert=302, coordinator=409), "POST": page_only(expert=409, coordinator=409)},
    # --- statistician pages
    "analysis:page": {"GET": page_only(coordinator=200, statistician=200),
                      "POST": page_only(coordinator=302, statistician=302)},
    "analysis:run_status": {"GET": page_only(coordinator=200, statistician=200), "POST": page_post_only()},
    "analysis:file": {"GET": page_only(coordinator=200, statistician=200), "POST": page_post_only()},
    # Declaring a run final (signed): without a password the page says so (302); only a statistician can succeed
    "analysis:final": {"GET": page_post_only(), "POST": page_only(coordinator=302, statistician=302)},
    # --- API: schema, docs, token
    "schema": {"GET": api_only(**{r: 200 for r in ROLES[1:]}), "POST": api_refuses_method()},
    "api-docs": {"GET": api_only(**{r: 200 for r in ROLES[1:]}), "POST": api_refuses_method()},
    "api-token": {"GET": roles(405), "POST": roles(400)},  # no credentials given: 400 (a lockout: 429)
    "api-root": {"GET": roles(200, anonymous=401), "POST": api_refuses_method()},
    # --- API: trials (members see their trials; writes are the coordinator's)
    "trial-list": {"GET": roles(200, anonymous=401), "POST": roles(400, anonymous=401)},  # empty body: 400
    "trial-detail": {"GET": roles(200, anonymous=401, outsider=404), "POST": api_refuses_method()},
    # GET: the commitment (seed, salt, block sizes only after lock) for the coordinator and the statistician
    "trial-allocation-list": {"GET": api_only(coordinator=200, statistician=200, outsider=404),
                              "POST": api_only(coordinator=409, outsider=404)},  # already sealed: 409
    "trial-progress": {"GET": api_only(coordinator=200, outsider=404), "POST": api_refuses_method()},
    # Settings change (issue 17): the fixture trial is past setup, so an empty body lacks the reason (400).
    "trial-settings": {"GET": api_refuses_method(), "POST": api_only(coordinator=400, outsider=404)},
    "trial-status": {"GET": api_only(coordinator=200, outsider=404), "POST": api_only(coordinator=400, outsider=404)},
    # --- API: trial-scoped resources, coordinators only
    "center-list": {"GET": api_only(coordinator=200), "POST": api_only(coordinator=400)},
    "arm-list": {"GET": api_only(coordinator=200), "POST": api_only(coordinator=400)},
    "member-list": {"GET": api_only(coordinator=200), "POST": api_only(coordinator=400)},
    "member-enrol": {"GET": api_only(coordinator=405), "POST": api_only(coordinator=409)},  # already enrolled
    # Editing setup (issue 17): an empty body lacks the reason (400) before the service's setup check.
    **{f"{kind}-{verb}": {"GET": api_only(coordinator=405), "POST": api_only(coordinator=400)}
       for kind in ("center", "arm", "member") for verb in ("edit", "remove")},
    "case-list": {"GET": api_only(coordinator=200), "POST": api_only(coordinator=400)},
    "case-detail": {"GET": api_only(coordinator=200), "POST": api_only(coordinator=405)},
    "case-enrol": {"GET": api_only(coordinator=405), "POST": api_only(coordinator=409)},
    "case-overview": {"GET": api_only(coordinator=200), "POST": api_refuses_method()},
    "case-exclude": {"GET": api_refuses_method(), "POST": api_only(coordinator=400)},  # no reason: 400
    "allocation-list": {"GET": api_only(coordinator=200), "POST": api_only(coordinator=405)},
    "import-list": {"GET": api_only(coordinator=405), "POST": api_only(coordinator=400)},
    "reference-list": {"GET": api_only(coordinator=405), "POST": api_only(coordinator=400)},
    # --- API: expert rating
    "rating-worklist": {"GET": api_only(expert=200), "POST": api_refuses_method()},
    "rating-task": {"GET": api_only(expert=200), "POST": api_refuses_method()},
    "rating-open": {"GET": api_refuses_method(), "POST": api_only(expert=200)},
    "rating-autosave": {"GET": api_refuses_method(), "POST": api_only(expert=200)},
    "rating-submit": {"GET": api_refuses_method(), "POST": api_only(expert=400)},
    # The rating's expert or a coordinator; an empty body has no reason: 400 (tests/rating/test_rating_amendments.py)
    "rating-amend": {"GET": api_refuses_method(), "POST": api_only(expert=400, coordinator=400)},
    # --- API: the standalone arena (issue 20 item 1). Experts: their available tasks (submit without a preference:
    # 400). Coordinators: the arena's versions (an empty body names none: 400) and the draw (idempotent: 200).
    "arena-worklist": {"GET": api_only(expert=200), "POST": api_refuses_method()},
    "arena-task": {"GET": api_only(expert=200), "POST": api_refuses_method()},
    "arena-open": {"GET": api_refuses_method(), "POST": api_only(expert=200)},
    "arena-autosave": {"GET": api_refuses_method(), "POST": api_only(expert=200)},
    "arena-submit": {"GET": api_refuses_method(), "POST": api_only(expert=400)},
    # The task's expert or a coordinator (as rating-amend); an empty body has no reason: 400
    "arena-amend": {"GET": api_refuses_method(), "POST": api_only(expert=400, coordinator=400)},
    "arena-setup": {"GET": api_only(coordinator=200), "POST": api_only(coordinator=400)},
    "arena-draw": {"GET": api_only(coordinator=405), "POST": api_only(coordinator=200)},
    # --- API: reading
    "reading-api:worklist": {"GET": api_only(reader=200), "POST": api_refuses_method()},
    "reading-api:detail": {"GET": read_api(reader=200), "POST": api_refuses_method()},
    "reading-api:open": {"GET": api_refuses_method(), "POST": read_api(reader=200)},
    "reading-api:heartbeat": {"GET": api_refuses_method(), "POST": read_api(reader=200)},
    "reading-api:autosave": {"GET": api_refuses_method(), "POST": read_api(reader=200)},
    "reading-api:submit": {"GET": api_refuses_method(), "POST": read_api(reader=400)},
    # The read's reader or a coordinator; the matrix's empty body has no reason: 400 (tests/reading/test_amendments.py)
    "reading-api:amend": {"GET": api_refuses_method(), "POST": read_api(reader=400, coordinator=400)},
    # --- API: analysis runs
    "analysis-run-list": {"GET": api_only(coordinator=200, statistician=200),
                          "POST": api_only(coordinator=201, statistician=201)},
    "analysis-run-detail": {"GET": api_only(coordinator=200, statistician=200),
                            "POST": api_only(coordinator=405, statistician=405)},
    # Declaring a run final: a statistician's signature; the empty body has no password: 400; a coordinator 403
    "analysis-run-final": {"GET": api_only(coordinator=405, statistician=405), "POST": api_only(statistician=400)},
}

# --- admin (GET only). The admin is for superusers (trial/admin.py): everyone else, staff coordinators included,
# is sent to the admin login, so nobody changes trial data around the audited services. For superusers trial data
# is read-only (issue 14): no add or delete page (403), the change page is a read-only view (200).
STAFF = ("coordinator", "outsider")  # both coordinators are staff


def admin_page(staff=302, superuser=200, anonymous=302) -> dict:
    del staff  # staff who are not superusers are treated like everyone else
    return roles(302, anonymous=anonymous, superuser=superuser)


def admin_model(app: str, model: str, *, add=200, delete=200, change=200, coordinator_add=403) -> dict:
    p = f"admin:{app}_{model}_"
    return {
        p + "changelist": {"GET": admin_page(403)},
        p + "add": {"GET": admin_page(coordinator_add, superuser=add)},
        p + "history": {"GET": admin_page(403)},
        p + "delete": {"GET": admin_page(403, superuser=delete)},
        p + "change": {"GET": admin_page(403, superuser=change)},
        f"admin/{app}/{model}/<path:object_id>/": {"GET": admin_page(302, superuser=302)},  # redirects to change
    }


EXPECTED.update({
    "admin:index": {"GET": admin_page(200)},
    "admin:login": {"GET": roles(200, superuser=302)},
    "admin:logout": {"GET": admin_page(405, superuser=405)},
    "admin:password_change": {"GET": admin_page(200)},
    "admin:password_change_done": {"GET": admin_page(200)},
    "admin:autocomplete": {"GET": admin_page(403, superuser=403)},  # no parameters: refused
    "admin:jsi18n": {"GET": admin_page(200)},
    "admin:view_on_site": {"GET": admin_page(404, superuser=404)},  # Trial has no get_absolute_url
    "admin:app_list": {"GET": admin_page(200)},
    "admin/(?P<url>.*)$": {"GET": admin_page(404, superuser=404)},
    "admin:auth_user_password_change": {"GET": admin_page(403)},
    **admin_model("auth", "group"),
    **admin_model("auth", "user"),
    **admin_model("authtoken", "tokenproxy"),
    **admin_model("axes", "accessattempt", add=403),
    **admin_model("axes", "accesslog", add=403),
    **admin_model("axes", "accessfailurelog", add=403),
    **admin_model("trial", "trial", add=403, delete=403),
    **admin_model("trial", "center", add=403, delete=403),
    **admin_model("trial", "arm", add=403, delete=403),
    **admin_model("trial", "membership", add=403, delete=403),
    **admin_model("trial", "case", add=403, delete=403),
    **admin_model("trial", "auditentry", add=403, delete=403),  # change: read-only view
    **admin_model("inference", "modelversion", add=403, delete=403),
    **admin_model("inference", "draft", add=403, delete=403),
    **admin_model("inference", "armmodelversion", add=403, delete=403),
    **admin_model("inference", "expertcalibration", add=403, delete=403),
})


def _route_id(route) -> str:
    return route.pattern


def test_every_route_has_expectations():
    missing = sorted({r.key for r in ROUTES if r.key not in EXPECTED})
    assert not missing, (
        "These URL patterns have no entry in EXPECTED (tests/security/test_permission_matrix.py). Add one per route, "
        "keyed by its name (or pattern string when unnamed), saying what each role must get for GET "
        f"(and POST for non-admin routes): {missing}"
    )
    stale = sorted(set(EXPECTED) - {r.key for r in ROUTES})
    assert not stale, f"EXPECTED names routes that no longer exist; remove them: {stale}"


def _forbidden_strings(world) -> dict[str, list[str]]:
    """What each role must never receive, on any route."""
    t = world
    never = [t["allocation_list"].seed, t["allocation_list"].salt, t["trial"].secret]
    arms = t["arms"]
    mv = arm_model_version(arms["ai_assisted"])
    reader_names = [m.user.username for m in t["readers"]]
    blind = [arms["ai_assisted"].code, arms["unassisted"].code, arms["ai_assisted"].name, arms["unassisted"].name,
             mv.name, *[v.name for v in t["arena_versions"]], *reader_names]
    draft = [DRAFT_FINDINGS, DRAFT_IMPRESSION, "Zebra-striped", "Sentinel apical", "0.8731", "0.9113"]
    out = {r: list(never) for r in ADMIN_ROLES}
    out["reader"] += draft
    out["expert"] += blind
    return out


STATIC_DOCS = {"schema", "api-docs"}  # the same text for everyone ("e.g. unassisted, ai_assisted"): no trial data


def _check(route, world, client, method: str, role: str, forbidden: list[str], expected,
           json_body: bool = False) -> list[str]:
    path = route.path(kwargs_for(route, world))
    if route.key in STATIC_DOCS:
        forbidden = _forbidden_strings(world)["anonymous"]  # the seed and secret only
    if method == "GET":
        resp = client.get(path)
    else:  # a form post; or a JSON object, which the light lane (core.light_api) answers when it may
        resp = client.post(path, "{}", content_type="application/json") if json_body else client.post(path)
    problems = []
    ok = expected if isinstance(expected, (set, frozenset)) else {expected}
    if resp.status_code not in ok:
        problems.append(f"{method} {path} as {role}: {resp.status_code}, expected {sorted(ok)}")
    if resp.status_code >= 500:
        return problems
    body = body_of(resp).decode("utf-8", "replace").lower()
    for s in forbidden:
        if s and s.lower() in body:
            problems.append(f"{method} {path} as {role}: the response contains {s!r}")
    if role == "reader" and resp.get("Content-Type", "").startswith("application/json"):
        if '"draft"' in body:
            problems.append(f"{method} {path} as the unassisted reader: a `draft` key in the JSON")
    return problems


@pytest.mark.parametrize("route", ROUTES, ids=_route_id)
@pytest.mark.requirement("ACC-1")
def test_route_permissions(route, world):
    entry = EXPECTED.get(route.key)
    if entry is None:
        pytest.fail(f"No EXPECTED entry for {route.key!r}: add one (see test_every_route_has_expectations).")
    path = route.path(kwargs_for(route, world))
    assert resolve(path).func == route.callback, f"{path} does not resolve to {route.key}"
    forbidden = _forbidden_strings(world)
    role_list = ADMIN_ROLES if route.is_admin else ROLES
    methods = ["GET"] if route.is_admin else ["GET", "POST"]
    assert set(entry) == set(methods), f"{route.key}: give expectations for exactly {methods}"
    problems = []
    for role in role_list:
        client = client_for(world, role)
        for method in methods:
            problems += _check(route, world, client, method, role, forbidden[role], entry[method][role])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key", sorted(settings.LIGHT_API))
@pytest.mark.requirement("ACC-1")
def test_light_lane_routes_permissions(key, world):
    """The matrix above posts forms, which the light lane never takes: its routes again with a JSON object (the
    browser's request), every role, the same expectations and no forbidden text (docs/performance.md)."""
    route = next(r for r in ROUTES if r.key == key)
    forbidden = _forbidden_strings(world)
    problems = []
    for role in ROLES:
        problems += _check(route, world, client_for(world, role), "POST", role, forbidden[role],
                           EXPECTED[key]["POST"][role], json_body=True)
    assert not problems, "\n".join(problems)


def test_unassisted_reader_never_receives_a_draft(world):
    """Every route, with each of the unassisted reader's reads as the read: no draft text, no `draft` key."""
    from reading.models import Read

    reader = world["un_reader"]
    client = client_for(world, "reader")
    forbidden = _forbidden_strings(world)["reader"]
    problems = []
    for read in Read.objects.filter(reader=reader):
        w = {**world, "read": read, "image": read.case.images.first()}
        for route in ROUTES:
            if route.is_admin:
                continue
            for method in ("GET", "POST"):
                problems += _check(route, w, client, method, "reader", forbidden, {*range(200, 600)})
    assert not problems, "\n".join(problems)


def test_the_ai_reader_does_receive_the_draft(world):
    """The control for the test above: the same markers do reach the AI arm's reader."""
    client = client_for(world, "coordinator")
    client.force_login(world["ai_reader"].user)
    read = world["ai_read"]
    api = client.get(reverse("reading-api:detail", args=[read.public_id])).json()
    assert "Zebra-striped" in json.dumps(api["draft"])
    page = client.get(reverse("reading:read", args=["PM", read.public_id]))
    assert b"Zebra-striped" in page.content


def test_case_overview_api_has_the_case_pages_rating_rows(world):
    """case-overview (seventh session): the rating-task rows of the case page, for case 0 (its tasks exist), under
    the page's blinding: the coordinator gets the rows; the expert made coordinator too gets the same rows with no
    amendment link and none of the expert's forbidden strings (arms, models, readers)."""
    from rating.models import Rating
    from trial.models import Membership

    case = world["cases"][0]
    tasks = list(Rating.objects.filter(case=case).select_related("expert__user").order_by("pk"))
    assert tasks, "the fixture's case 0 should have rating tasks"
    url = reverse("case-overview", args=["PM", case.pk])
    want = [(r.expert.user.username, r.status) for r in tasks]
    rows = client_for(world, "coordinator").get(url).json()["rating_tasks"]
    assert [(r["expert"], r["status"]) for r in rows] == want
    user = world["users"]["expert"]
    Membership.objects.create(user=user, trial=world["trial"], role="coordinator")
    resp = client_for(world, "expert").get(url)
    assert resp.status_code == 200
    body = body_of(resp).decode().lower()
    assert not [s for s in _forbidden_strings(world)["expert"] if s and s.lower() in body]
    rows = resp.json()["rating_tasks"]
    assert [(r["expert"], r["status"]) for r in rows] == want and all(r["amend_url"] is None for r in rows)


def test_revealed_allocations_are_exactly_the_revealed_slots(world):
    from trial.models import AllocationSlot

    slots = AllocationSlot.objects.filter(stratum__allocation_list__trial=world["trial"])
    revealed = slots.filter(revealed_at__isnull=False)
    assert 0 < revealed.count() < slots.count(), "the fixture should have revealed and unrevealed slots"
    client = client_for(world, "coordinator")
    api = client.get(reverse("allocation-list", args=["PM"])).json()
    got = {(r["stratum"], r["sequence"], r["arm"]) for r in api["results"]}
    assert api["count"] == revealed.count()
    assert got == {(s.stratum.key, s.sequence, s.arm.code) for s in revealed}
    page = client.get(reverse("trial:allocations", args=["PM"])).content.decode()
    assert page.count("<tr") - 1 == revealed.count()  # one header row
    for s in revealed:
        unit = s.membership.user.username if s.membership_id else s.case.code
        assert unit in page
    for role in ROLES:
        if role != "coordinator":
            expected = 401 if role == "anonymous" else 403
            response = client_for(world, role).get(reverse("allocation-list", args=["PM"]))
            assert response.status_code == expected


@pytest.mark.parametrize("also", ["expert", "reader", "statistician"])
def test_arena_amendment_routes_for_a_coordinator_who_holds_another_role(world, also):
    """The role combinations the matrix's single roles leave out, on the arena's amendment routes (the page and the
    API): a member of the trial made its coordinator too. Made coordinator, an expert or a reader is a blinded
    participant (trial.blinding) and gets another expert's task as any expert or reader would: 404 for an expert
    (its existence is not revealed), 403 for a reader; the statistician, not blinded, gets the coordinator's
    answers (the task is not submitted: 409 on the page, no reason: 400 on the API). Nothing forbidden either way."""
    from rating.models import ArenaTask
    from trial.models import Membership

    member = world["users"][also]
    task = (ArenaTask.objects.filter(case__trial=world["trial"]).exclude(expert__user=member)
            .exclude(expert=world["expert"]).first())
    assert task is not None, "the fixture's arena should have another expert's task"
    Membership.objects.create(user=member, trial=world["trial"], role="coordinator")
    client = client_for(world, also)
    page = reverse("arena:amend", args=["PM", task.public_id])
    api = reverse("arena-amend", args=["PM", task.public_id])
    want = {"expert": (404, 404, 404), "reader": (403, 403, 403), "statistician": (409, 409, 400)}[also]
    responses = [client.get(page), client.post(page), client.post(api, "{}", content_type="application/json")]
    assert tuple(r.status_code for r in responses) == want
    forbidden = _forbidden_strings(world)["expert" if also == "statistician" else also]
    for r in responses:
        body = body_of(r).decode().lower()
        assert not [s for s in forbidden if s and s.lower() in body]
