"""Support for the permission matrix: filling a route's kwargs from the fixture world, and making the requests."""
from __future__ import annotations

import re

from django.contrib.contenttypes.models import ContentType
from django.test import Client

from inference.selectors import arm_model_version
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
        ("inference", "modelversion"): arm_model_version(world["arms"]["ai_assisted"]).pk,
        ("inference", "draft"): world["draft"].pk,
        ("inference", "armmodelversion"): world["arms"]["ai_assisted"].pk,
        ("inference", "expertcalibration"): world["calibration"].pk,
    }
    try:
        return objects[(app, model)]
    except KeyError:
        raise AssertionError(
            f"No fixture object for the admin model {app}.{model}: add one to the security world "
            "(tests/security/conftest.py) and to _admin_object_id (tests/security/matrix_support.py)."
        ) from None


# Path kwargs whose value does not depend on the route: name -> value from the fixture world.
_PLAIN_KWARGS = {
    "code": lambda world: world["trial"].code,
    "trial_code": lambda world: world["trial"].code,
    "format": lambda world: "json",
    "member_id": lambda world: world["un_reader"].pk,
    "center_id": lambda world: world["trial"].centers.order_by("pk").first().pk,
    "arm_id": lambda world: world["trial"].arms.order_by("pk").first().pk,
    "case_id": lambda world: world["cases"][1].pk,
    "draft_id": lambda world: world["draft"].pk,
    "entry_id": lambda world: world["audit_entry"].pk,
    "run_id": lambda world: world["run"].pk,
    "name": lambda world: "report/report.html",
    "content_type_id": lambda world: ContentType.objects.get_by_natural_key("trial", "trial").pk,
    "id": lambda world: world["coordinator"].pk,  # admin user password change
    "app_label": lambda world: "trial",
    "url": lambda world: "no-such-page/",  # the admin's catch-all
    "uidb64": lambda world: "MQ",  # password_reset_confirm: a user id with a made-up token
    "token": lambda world: "made-up-token",
}


def _pk_for(route: Route, name: str, world: dict):
    if name.startswith("member-"):
        return world["un_reader"].pk
    if name.startswith("center-"):
        return world["trial"].centers.order_by("pk").first().pk
    if name.startswith("arm-"):
        return world["trial"].arms.order_by("pk").first().pk
    if name.startswith("case-"):
        return world["cases"][1].pk
    if name.startswith("analysis-run-"):
        return world["run"].pk
    raise AssertionError(f"Which object is `pk` in {route.key}? Say so in kwargs_for().")


def _public_id_for(route: Route, name: str, world: dict):
    if "image" in name:
        return world["image"].public_id
    if name.startswith(("arena:", "arena-")):
        return world["arena_task"].public_id
    if name.startswith(("rating:", "rating-")):
        return world["rating"].public_id
    if name.startswith(("reading:", "reading-api:")):
        return world["read"].public_id
    raise AssertionError(f"Which object is `public_id` in {route.key}? Say so in kwargs_for().")


def _object_id_for(route: Route, name: str, world: dict):
    m = _ADMIN_MODEL.match(route.pattern)
    if name == "admin:view_on_site":
        return world["trial"].pk
    return _admin_object_id(world, m.group("app"), m.group("model"))


def kwargs_for(route: Route, world: dict) -> dict:
    """Fill every path kwarg of `route` with an object of the fixture trial (PM)."""
    name = route.name or ""
    out = {}
    for p in route.params:
        if p in _PLAIN_KWARGS:
            out[p] = _PLAIN_KWARGS[p](world)
        elif p == "pk":
            out[p] = _pk_for(route, name, world)
        elif p == "public_id":
            out[p] = _public_id_for(route, name, world)
        elif p == "object_id":
            out[p] = _object_id_for(route, name, world)
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
