"""Support for the permission matrix: filling a route's kwargs from the fixture world, and making the requests."""
from __future__ import annotations

import re

from django.contrib.contenttypes.models import ContentType
from django.test import Client

from tests.security.routes import Route

_ADMIN_MODEL = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


def _admin_object_id(world: dict, app: str, model: str):
    objects = {
        ("auth", "group"): world["group"].pk,
        ("auth", "user"): world["coordinator"].pk,
        ("authtoken", "tokenproxy"): world["coordinator"].pk,
        ("axes", "accessattempt"): world["attempt"].pk,
        ("axes", "accesslog"): world["access_log"].pk,
        ("axes", "accessfailurelog"): world["failure_log"].pk,
        ("trial", "trial"): world["trial"].pk,
        ("trial", "center"): world["centers"][0].pk,
        ("trial", "arm"): world["arms"]["ai_assisted"].pk,
        ("trial", "membership"): world["un_reader"].pk,
        ("trial", "case"): world["cases"][1].pk,
        ("trial", "auditentry"): world["audit_entry"].pk,
        ("inference", "modelversion"): world["arms"]["ai_assisted"].model_version_id,
        ("inference", "draft"): world["draft"].pk,
    }
    try:
        return objects[(app, model)]
    except KeyError:
        raise AssertionError(
            f"No fixture object for the admin model {app}.{model}: add one to the security world "
            "(tests/security/conftest.py) and to _admin_object_id (tests/security/matrix_support.py)."
        ) from None


def kwargs_for(route: Route, world: dict) -> dict:
    """Fill every path kwarg of `route` with an object of the fixture trial (PM)."""
    name = route.name or ""
    out = {}
    for p in route.params:
        if p in ("code", "trial_code"):
            out[p] = world["trial"].code
        elif p == "format":
            out[p] = "json"
        elif p == "member_id":
            out[p] = world["un_reader"].pk
        elif p == "case_id":
            out[p] = world["cases"][1].pk
        elif p == "draft_id":
            out[p] = world["draft"].pk
        elif p == "run_id":
            out[p] = world["run"].pk
        elif p == "name":
            out[p] = "report/report.html"
        elif p == "pk":
            if name.startswith("member-"):
                out[p] = world["un_reader"].pk
            elif name.startswith("case-"):
                out[p] = world["cases"][1].pk
            elif name.startswith("analysis-run-"):
                out[p] = world["run"].pk
            else:
                raise AssertionError(f"Which object is `pk` in {route.key}? Say so in kwargs_for().")
        elif p == "public_id":
            if "image" in name:
                out[p] = world["image"].public_id
            elif name.startswith(("rating:", "rating-")):
                out[p] = world["rating"].public_id
            elif name.startswith(("reading:", "reading-api:")):
                out[p] = world["read"].public_id
            else:
                raise AssertionError(f"Which object is `public_id` in {route.key}? Say so in kwargs_for().")
        elif p == "object_id":
            m = _ADMIN_MODEL.match(route.pattern)
            if name == "admin:view_on_site":
                out[p] = world["trial"].pk
            else:
                out[p] = _admin_object_id(world, m.group("app"), m.group("model"))
        elif p == "content_type_id":
            out[p] = ContentType.objects.get_by_natural_key("trial", "trial").pk
        elif p == "id":  # admin user password change
            out[p] = world["coordinator"].pk
        elif p == "app_label":
            out[p] = "trial"
        elif p == "url":  # the admin's catch-all
            out[p] = "no-such-page/"
        else:
            raise AssertionError(f"No fixture value for the path kwarg `{p}` of {route.key}: add it to kwargs_for() "
                                 "in tests/security/matrix_support.py.")
    return out


def client_for(world: dict, role: str) -> Client:
    c = Client(raise_request_exception=False)
    user = world["users"][role]
    if user is not None:
        c.force_login(user)
    return c


def body_of(resp) -> bytes:
    if getattr(resp, "streaming", False):
        return b"".join(resp.streaming_content)
    return resp.content
