"""CSRF in the light lane under production HTTPS settings (core.light_api; config/settings.py with DEBUG off):
behind a proxy that sets X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER, so request.is_secure()), with
CSRF_TRUSTED_ORIGINS. Django's CSRF check then also checks the Origin header, or, without one, the Referer
(required over HTTPS). A POST with a foreign Origin, no Referer, or another host's (or an insecure) Referer must be
refused by the lane exactly as by DRF: the same 403 and body, nothing written. A same-origin or trusted-origin POST
passes, in the lane. Each request is sent twice: once to the lane, once with the lane switched off (LIGHT_API empty,
so DRF's SessionAuthentication runs the check), and the answers compared."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rating.models import Rating
from reading import services
from reading.models import Read
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.reading import reader_in, reads_of

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "trial.example.org"
TRUSTED = "https://portal.example.org"


@pytest.fixture
def https(settings):
    """Production's HTTPS settings (config/settings.py, DEBUG off), the site at https://trial.example.org."""
    settings.ALLOWED_HOSTS = [HOST, "portal.example.org"]
    settings.CSRF_TRUSTED_ORIGINS = [TRUSTED, "https://*.sites.example.org"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    return settings


@pytest.fixture
def t(transactional_db, monkeypatch, https):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = rating_trial(code="HTTPS", cases=3, panel=2, experts=2)
    complete_case(t["cases"][0])
    t["reader"] = reader_in(t, "unassisted")
    return t


def _browser(user, settings, lane: bool) -> Client:
    """A signed-in browser behind the TLS proxy, with the CSRF cookie and header (as common.js sends them); its
    handler built now, with or without the lane."""
    settings.LIGHT_API = dict(LIGHT_ROUTES) if lane else {}
    c = Client(enforce_csrf_checks=True, HTTP_HOST=HOST, HTTP_X_FORWARDED_PROTO="https")
    c.force_login(user)
    c.cookies["csrftoken"] = "a" * 32
    c.defaults["HTTP_X_CSRFTOKEN"] = "a" * 32
    c.get("/accounts/login/")  # builds the handler (its middleware reads LIGHT_API now)
    return c


LIGHT_ROUTES = {
    "reading-api:heartbeat": "reading.api.light_heartbeat",
    "reading-api:autosave": "reading.api.light_autosave",
    "rating-autosave": "rating.api.light_autosave",
}

FORGED = [  # headers of a cross-site (or header-stripped) POST; Django's reason in the comment
    {"HTTP_ORIGIN": "https://evil.example"},  # Origin checking failed
    {"HTTP_ORIGIN": "null"},  # a sandboxed frame or a file
    {"HTTP_ORIGIN": f"http://{HOST}"},  # same host, wrong scheme
    {"HTTP_ORIGIN": f"https://{HOST}:8443"},  # same host, another port
    {"HTTP_ORIGIN": "https://evil.example", "HTTP_REFERER": f"https://{HOST}/reading/"},  # Origin decides
    {},  # over HTTPS, no Origin and no Referer: "no Referer"
    {"HTTP_REFERER": "https://evil.example/page"},  # another host
    {"HTTP_REFERER": f"http://{HOST}/reading/"},  # insecure Referer while the host is secure
    {"HTTP_REFERER": "not a url"},  # malformed
    {"HTTP_REFERER": f"https://{HOST}.evil.example/"},  # a suffix trick
    {"HTTP_REFERER": "https://x.example.org/"},  # a sibling of a trusted origin, not trusted
]
ALLOWED = [
    {"HTTP_ORIGIN": f"https://{HOST}"},
    {"HTTP_REFERER": f"https://{HOST}/reading/HTTPS/read/x/"},
    {"HTTP_ORIGIN": TRUSTED},
    {"HTTP_REFERER": f"{TRUSTED}/somewhere"},
    {"HTTP_ORIGIN": "https://a.sites.example.org"},  # a wildcard trusted origin
]


def _light(r) -> bool:
    return "Allow" not in r  # DRF's answers carry Allow, the lane's none


def _targets(t):
    m = t["reader"]
    a = services.open_read(m.user, reads_of(m).filter(opened_at__isnull=True).first())
    task = tasks_of(t, 0)[0]
    return [
        (m.user, reverse("reading-api:heartbeat", args=[a.public_id]), {"seconds": 2}),
        (m.user, reverse("reading-api:autosave", args=[a.public_id]), {"findings_text": "Forged?"}),
        (task.expert.user, reverse("rating-autosave", args=[t["trial"].code, task.public_id]), {"comment": "Forged?"}),
    ]


def _state():
    return (list(Read.objects.order_by("pk").values_list("findings_text", "active_seconds")),
            list(Rating.objects.order_by("pk").values_list("comment", "quality_a")))


def test_the_lane_refuses_cross_site_posts_as_drf_does(t, settings):
    Read.objects.update(last_heartbeat_at=timezone.now())
    targets = _targets(t)
    before = _state()
    problems = []
    for user, url, body in targets:
        lane, full = _browser(user, settings, lane=True), _browser(user, settings, lane=False)
        for headers in FORGED:
            x = lane.post(url, json.dumps(body), content_type="application/json", **headers)
            y = full.post(url, json.dumps(body), content_type="application/json", **headers)
            if not (x.status_code == y.status_code == 403 and x.json() == y.json()
                    and x.json()["detail"].startswith("CSRF Failed")):
                problems.append((url, headers, x.status_code, y.status_code, x.content[:160], y.content[:160]))
    assert not problems, problems
    assert _state() == before  # nothing written by a refused request


def test_same_origin_and_trusted_posts_pass_in_the_lane(t, settings):
    targets = _targets(t)
    for user, url, body in targets:
        lane, full = _browser(user, settings, lane=True), _browser(user, settings, lane=False)
        for headers in ALLOWED:
            x = lane.post(url, json.dumps(body), content_type="application/json", **headers)
            y = full.post(url, json.dumps(body), content_type="application/json", **headers)
            assert x.status_code == y.status_code == 200, (url, headers, x.content[:200], y.content[:200])
            assert _light(x) and not _light(y), (url, headers)
            assert x.json().keys() == y.json().keys()
    assert Read.objects.get(public_id=targets[1][1].split("/")[-3]).findings_text == "Forged?"


def test_plain_http_is_redirected_before_the_lane(t, settings):
    user, url, body = _targets(t)[0]
    c = _browser(user, settings, lane=True)
    r = c.post(url, json.dumps(body), content_type="application/json", HTTP_X_FORWARDED_PROTO="http",
               HTTP_ORIGIN=f"https://{HOST}")
    assert r.status_code == 301 and r["Location"].startswith(f"https://{HOST}/")
