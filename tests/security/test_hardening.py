"""Hardening (issue 8): login lockout, session expiry, CSRF, security headers and CSP, deploy checks, upload limits,
error pages."""
from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as dj_settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories.trial import PASSWORD, UserFactory, make_trial
from tests.security.routes import all_routes

pytestmark = pytest.mark.django_db

ROOT = Path(dj_settings.BASE_DIR)
TEMPLATES = ROOT / "templates"


def _prod_env(**extra) -> dict:
    drop = (
        "DEBUG", "SECRET_KEY", "AUDIT_SIGNING_KEY", "ALLOWED_HOSTS",
        "DJANGO_ALLOW_ASYNC_UNSAFE",  # test-only
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), AUDIT_SIGNING_KEY=secrets.token_urlsafe(40),
               ALLOWED_HOSTS="trial.example.org,testserver",
               DJANGO_SETTINGS_MODULE="config.settings", **extra)
    return env


# --- login lockout (django-axes) -------------------------------------------------------------------------------


@pytest.mark.requirement("ACC-2")
def test_login_is_locked_after_five_failures_even_with_the_right_password(settings):
    settings.AXES_ENABLED = True
    user = UserFactory(username="lockme")
    c = Client()
    statuses = [c.post(reverse("login"), {"username": "lockme", "password": f"wrong-{i}"}).status_code
                for i in range(5)]
    assert statuses[:4] == [200] * 4  # the form again, with its error
    r = c.post(reverse("login"), {"username": "lockme", "password": PASSWORD})
    assert r.status_code == 429
    assert "locked" in r.content.decode().lower() and "too many login attempts" in r.content.decode().lower()
    assert "_auth_user_id" not in c.session
    assert c.get(reverse("home")).status_code == 302  # still not logged in
    # Another user from the same address is not affected (lockout is per username + IP).
    UserFactory(username="bystander")
    assert Client().post(reverse("login"), {"username": "bystander", "password": PASSWORD}).status_code == 302
    assert user.pk


def test_a_correct_login_before_the_limit_works(settings):
    settings.AXES_ENABLED = True
    UserFactory(username="typo")
    c = Client()
    for i in range(3):
        c.post(reverse("login"), {"username": "typo", "password": f"wrong-{i}"})
    r = c.post(reverse("login"), {"username": "typo", "password": PASSWORD})
    assert r.status_code == 302 and "_auth_user_id" in c.session


@pytest.mark.requirement("ACC-2")
def test_token_endpoint_is_locked_too(settings):
    settings.AXES_ENABLED = True
    UserFactory(username="apiuser")
    c = Client()
    for i in range(5):
        c.post(reverse("api-token"), {"username": "apiuser", "password": f"wrong-{i}"})
    r = c.post(reverse("api-token"), {"username": "apiuser", "password": PASSWORD})
    # The right password during the lockout: refused, and said so (not DRF's generic "unable to log in").
    assert r.status_code == 429, r.content
    assert r.json()["code"] == "locked_out" and "locked" in r.json()["detail"]
    assert int(r["Retry-After"]) > 0
    assert "token" not in r.json()
    assert not Token.objects.filter(user__username="apiuser").exists()


# --- sessions -----------------------------------------------------------------------------------------------------


def test_sessions_expire_and_an_expired_session_goes_to_login():
    assert 0 < dj_settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert dj_settings.SESSION_EXPIRE_AT_BROWSER_CLOSE and dj_settings.SESSION_COOKIE_HTTPONLY
    UserFactory(username="sleepy")
    c = Client()
    assert c.post(reverse("login"), {"username": "sleepy", "password": PASSWORD}).status_code == 302
    assert c.get(reverse("home")).status_code == 200
    session = Session.objects.get(session_key=c.session.session_key)
    expected = timezone.now() + dt.timedelta(seconds=dj_settings.SESSION_COOKIE_AGE)
    assert abs((session.expire_date - expected).total_seconds()) < 60
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    r = c.get(reverse("trial:create"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    assert c.get(reverse("trial-list")).status_code in (401, 403)


# --- CSRF ---------------------------------------------------------------------------------------------------------

_FORM = re.compile(r"<form\b(?P<attrs>[^>]*)>(?P<body>.*?)</form>", re.S | re.I)


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    forms = 0
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for m in _FORM.finditer(text):
            if not re.search(r"method\s*=\s*[\"']?post", m.group("attrs"), re.I):
                continue
            forms += 1
            if "{% csrf_token %}" not in m.group("body"):
                problems.append(f"{path.relative_to(ROOT)}: <form{m.group('attrs')}> has no {{% csrf_token %}}")
    assert forms >= 10, "the scan found too few forms: is the regex still right?"
    assert not problems, "\n".join(problems)


def _dummy_kwargs(route) -> dict:
    values = {"code": "ZZ", "trial_code": "ZZ", "member_id": 1, "case_id": 1, "draft_id": 1, "entry_id": 1,
              "run_id": 1, "center_id": 1,
              "arm_id": 1, "public_id": "abc", "name": "a.html", "pk": 1, "format": "json", "uidb64": "MQ",
              "token": "x-y"}
    return {p: values[p] for p in route.params}


def test_every_page_refuses_a_post_without_the_csrf_token():
    """The CSRF check runs before the view, so any kwargs do: every page route (not the API, not the admin) must
    answer a token-less POST with 403, signed in or not."""
    user = UserFactory(username="csrf-user")
    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(user)
    anonymous = Client(enforce_csrf_checks=True)
    problems = []
    routes = [r for r in all_routes() if not r.is_api and not r.is_admin]
    assert len(routes) >= 25
    for route in routes:
        path = route.path(_dummy_kwargs(route))
        for who, c in (("signed-in", signed_in), ("anonymous", anonymous)):
            r = c.post(path, {"x": "1"})
            if r.status_code != 403:
                problems.append(f"POST {path} ({who}) without a CSRF token: {r.status_code}")
    assert not problems, "\n".join(problems)
    # Control: with the token the login form is processed.
    c = Client(enforce_csrf_checks=True)
    c.get(reverse("login"))
    token = c.cookies["csrftoken"].value
    r = c.post(reverse("login"),
               {"username": "csrf-user", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert r.status_code == 302


def test_api_session_writes_need_csrf_but_token_writes_do_not():
    t = make_trial(code="CS", experts=1, centers=1)
    coord = t["coordinator"]
    c = Client(enforce_csrf_checks=True)
    c.force_login(coord)
    r = c.post(reverse("case-list", args=["CS"]),
               {"code": "API1", "center": "c1"}, content_type="application/json")
    assert r.status_code == 403 and "csrf" in r.content.decode().lower()
    token = Token.objects.create(user=coord)
    r = Client(enforce_csrf_checks=True).post(reverse("case-list", args=["CS"]),
                                              {"code": "API1", "center": "c1"},
                                              content_type="application/json",
                                              HTTP_AUTHORIZATION=f"Token {token.key}")
    assert r.status_code == 201


# --- headers and CSP -----------------------------------------------------------------------------------------------


def _assert_headers(resp, where: str):
    assert resp["X-Frame-Options"] == "DENY", where
    assert resp["X-Content-Type-Options"] == "nosniff", where
    assert resp["Referrer-Policy"] == "same-origin", where
    csp = resp["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'self'", where
    assert directives["script-src"] == "'self'", where  # no inline script, no eval, no other origin
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", where
    assert directives["form-action"] == "'self'" and directives["base-uri"] == "'self'", where


def test_security_headers_and_csp_on_pages_and_api():
    t = make_trial(code="HD", experts=1, centers=1)
    c = Client()
    _assert_headers(c.get(reverse("login")), "login page")
    _assert_headers(c.get("/no-such-page/"), "404 page")  # deliberately no route
    c.force_login(t["coordinator"])
    _assert_headers(c.get(reverse("trial:detail", args=["HD"])), "trial page")
    _assert_headers(c.get(reverse("trial-list")), "API")
    _assert_headers(c.get(reverse("admin:index")), "admin")
    docs = c.get(reverse("api-docs"))  # Swagger UI from the sidecar's static files, its init script separate
    assert docs.status_code == 200 and "cdn" not in docs.content.decode() and "<script>" not in docs.content.decode()
    _assert_headers(docs, "API docs")
    assert c.get(reverse("api-docs"), {"script": ""}).status_code == 200


def test_templates_need_no_inline_script():
    """The CSP allows scripts from 'self' only: no inline <script>, event-handler attribute or javascript: URL."""
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for m in re.finditer(r"<script\b([^>]*)>", text, re.I):
            if "src=" not in m.group(1) and "application/json" not in m.group(1):
                problems.append(f"{path.relative_to(ROOT)}: inline <script{m.group(1)}>")
        for m in re.finditer(r"<[a-z][^>]*\son[a-z]+\s*=", text, re.I):
            problems.append(f"{path.relative_to(ROOT)}: inline event handler in {m.group(0)[:80]!r}")
        if "javascript:" in text.lower():
            problems.append(f"{path.relative_to(ROOT)}: a javascript: URL")
    assert not problems, "\n".join(problems)


# --- production settings -------------------------------------------------------------------------------------------


def test_manage_py_check_deploy_is_clean_with_production_settings():
    r = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                       env=_prod_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


def test_production_refuses_the_demo_secret_key():
    env = _prod_env()
    env.pop("SECRET_KEY")
    r = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "SECRET_KEY must be set" in r.stderr


def test_production_refuses_the_demo_audit_signing_key():
    """Issue 14: the audit chain heads are signed with a key from the environment; the public demo key, a short
    key or SECRET_KEY itself is refused at startup with DEBUG off."""
    for key in (None, "short", "same"):
        env = _prod_env()
        if key is None:
            env.pop("AUDIT_SIGNING_KEY")
        else:
            env["AUDIT_SIGNING_KEY"] = env["SECRET_KEY"] if key == "same" else key
        r = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "AUDIT_SIGNING_KEY must" in r.stderr, (key, r.stderr[-500:])


PROD_PAGES = """
import django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment
assert settings.DEBUG is False
assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE and settings.SECURE_HSTS_SECONDS > 0
c = Client(HTTP_HOST="trial.example.org")
r = c.get("/no-such-page/", secure=True)
print(r.status_code)
print(r.content.decode())
"""


def test_production_404_is_our_page_without_debug_detail():
    r = subprocess.run([sys.executable, "-c", PROD_PAGES], cwd=ROOT, env=_prod_env(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    status, _, body = r.stdout.partition("\n")
    assert status == "404"
    assert "There is nothing here, or it is not yours to see." in body
    for leak in ("Traceback", "URLconf", "urlpatterns", "DEBUG = True", "Page not found (404)"):
        assert leak not in body


def test_server_errors_show_our_500_page(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.security.urls_boom"
    user = UserFactory(username="unlucky")
    c = Client(raise_request_exception=False)
    c.force_login(user)
    r = c.get("/__boom__/")  # the one route of tests/security/urls_boom.py
    assert r.status_code == 500
    body = r.content.decode()
    assert "Something went wrong" in body
    assert "boom" not in body and "Traceback" not in body and "RuntimeError" not in body


# --- upload limits -------------------------------------------------------------------------------------------------


def test_an_oversized_dicom_file_is_refused_clearly(settings):
    settings.DICOM_MAX_FILE_BYTES = 4096
    t = make_trial(code="UP", experts=1, centers=1)
    token = Token.objects.create(user=t["coordinator"])
    c = Client()
    big = io.BytesIO(b"\0" * 128 + b"DICM" + b"\0" * 8192)
    big.name = "huge.dcm"
    r = c.post(reverse("import-list", args=["UP"]),
               {"center": "c1", "files": [big]}, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert r.status_code == 400
    (result,) = r.json()["results"]
    assert result["status"] == "refused" and result["reason_code"] == "too_large"
    assert "limit 4096" in result["message"]
    # The page says the same.
    c.force_login(t["coordinator"])
    big.seek(0)
    r = c.post(reverse("imports:upload", args=["UP"]),
               {"center": t["centers"][0].pk, "files": [big]}, follow=True)
    assert r.status_code == 200
    assert "1 refused" in r.content.decode() and "limit 4096" in r.content.decode()


def test_an_oversized_request_body_is_refused_with_400(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    t = make_trial(code="UB", experts=1, centers=1)
    c = Client(raise_request_exception=False)
    c.force_login(t["coordinator"])
    r = c.post(reverse("center-list", args=["UB"]),
               {"code": "c9", "name": "x" * 5000}, content_type="application/json")
    assert r.status_code in (400, 413), r.status_code
    r = c.post(reverse("trial:center_add", args=["UB"]), {"code": "c9", "name": "x" * 5000})
    assert r.status_code in (400, 413), r.status_code


def test_anonymous_api_request_is_challenged_with_401():
    r = Client().get(reverse("trial-list"))
    assert r.status_code == 401
    assert r["WWW-Authenticate"] == "Token"
