"""The login lockout (django-axes) attacked by an insider (ninth session, helper attack).

Intended (docs/audit.md, config/settings.py): five failures lock one username from one address for 15 minutes
(`AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]`). Per username alone would let anyone lock a named
colleague out, a coordinator on the day the trial locks or an expert mid-panel, by failing five logins with their
username; per address alone would let a guesser try every account from one desk.

Leaked, fixed: behind the reverse proxy that ends TLS (SECURE_PROXY_SSL_HEADER), REMOTE_ADDR is the proxy's address
for everyone, so "username + address" was "username": a reader at any desk locked the coordinator out everywhere.
The address is now the client's, read from X-Forwarded-For behind `TRUSTED_PROXY_COUNT` proxies
(trial.access_audit.client_ip, also what the access audit records); entries a caller adds themselves are ignored.
And a right password now clears that username and address's failures (`AXES_RESET_ON_SUCCESS`). And a made-up
username over 80 characters was a 500 (the access audit's object id; over 255, axes's own column): now cut to the
150 a username can have (trial.access_audit.lockout_username, AXES_USERNAME_CALLABLE), refused and counted.

Held: the answers (status and body) are the same for an existing and a made-up username, before, at and during a
lockout, on the login page and the token endpoint; both count toward one lockout (form or JSON body); the
lockout ends after the cool-off; a session or token already held keeps working during a lockout (it stops password
guesses, it does not end someone's work)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.clients import token_client
from tests.factories.trial import PASSWORD, UserFactory
from trial.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.requirement("ACC-2")]

READER_DESK, COORD_DESK, PROXY = "10.0.0.5", "10.0.0.9", "127.0.0.1"


@pytest.fixture(autouse=True)
def _axes_on(settings):
    settings.AXES_ENABLED = True
    settings.TRUSTED_PROXY_COUNT = 0


def _login(username: str, password: str, **meta):
    return Client().post(reverse("login"), {"username": username, "password": password}, **meta)


def _token(username: str, password: str, json_body: bool = False, **meta):
    body = {"username": username, "password": password}
    if json_body:
        return Client().post(reverse("api-token"), json.dumps(body), content_type="application/json", **meta)
    return Client().post(reverse("api-token"), body, **meta)


def _fail(n: int, username: str, **meta) -> list[int]:
    return [_login(username, f"wrong-{i}", **meta).status_code for i in range(n)]


def test_a_reader_failing_with_the_coordinators_username_locks_out_only_their_own_desk():
    UserFactory(username="coord")
    UserFactory(username="reader1")
    assert _fail(5, "coord", REMOTE_ADDR=READER_DESK)[-1] == 429
    assert _login("coord", PASSWORD, REMOTE_ADDR=READER_DESK).status_code == 429  # that desk: locked, as intended
    assert _login("coord", PASSWORD, REMOTE_ADDR=COORD_DESK).status_code == 302  # the coordinator's desk: works
    assert _token("coord", PASSWORD, REMOTE_ADDR=COORD_DESK).status_code == 200
    assert _login("reader1", PASSWORD, REMOTE_ADDR=READER_DESK).status_code == 302  # other names from that desk


def test_behind_the_proxy_a_colleague_is_locked_out_only_from_the_attackers_desk(settings):
    """Every request comes from the proxy (REMOTE_ADDR 127.0.0.1). Before: the coordinator was locked out from
    every desk."""
    settings.TRUSTED_PROXY_COUNT = 1
    UserFactory(username="coord")
    assert _fail(5, "coord", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=READER_DESK)[-1] == 429
    assert _login("coord", PASSWORD, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=READER_DESK).status_code == 429
    assert _login("coord", PASSWORD, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=COORD_DESK).status_code == 302
    assert _token("coord", PASSWORD, json_body=True, REMOTE_ADDR=PROXY,
                  HTTP_X_FORWARDED_FOR=COORD_DESK).status_code == 200
    # The audit names the desk, not the proxy.
    failed = AuditEntry.objects.filter(action="auth:login_failed").order_by("pk").last()
    locked = AuditEntry.objects.filter(action="auth:lockout").order_by("pk").last()
    assert failed.after["ip"] == READER_DESK and locked.after["ip"] == READER_DESK
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {READER_DESK}


def test_a_guesser_cannot_escape_the_lockout_by_forging_x_forwarded_for(settings):
    """The proxy appends the address it saw; whatever the caller put before it is ignored, as is a header with no
    address where the proxy's entry should be."""
    settings.TRUSTED_PROXY_COUNT = 1
    UserFactory(username="coord")
    statuses = [_login("coord", f"wrong-{i}", REMOTE_ADDR=PROXY,
                       HTTP_X_FORWARDED_FOR=f"203.0.113.{i}, {READER_DESK}").status_code for i in range(5)]
    assert statuses[-1] == 429
    assert _login("coord", PASSWORD, REMOTE_ADDR=PROXY,
                  HTTP_X_FORWARDED_FOR=f"203.0.113.99, {READER_DESK}").status_code == 429
    # Without a proxy in front (count 0), the header is the caller's own and never read.
    settings.TRUSTED_PROXY_COUNT = 0
    assert _fail(5, "coord", REMOTE_ADDR=READER_DESK, HTTP_X_FORWARDED_FOR="198.51.100.7")[-1] == 429
    assert _login("coord", PASSWORD, REMOTE_ADDR=READER_DESK,
                  HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 429
    # Garbage where the proxy's entry should be: the proxy's own address, never a caller-chosen one.
    settings.TRUSTED_PROXY_COUNT = 1
    _login("coord", "wrong", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="not-an-address")
    assert AccessAttempt.objects.filter(ip_address=PROXY).exists()


_CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def _answers(call, username: str) -> list[tuple[int, bytes]]:
    out = []
    for i in range(7):
        r = call(username, f"wrong-{i}")
        out.append((r.status_code, _CSRF.sub(b"", r.content).replace(username.encode(), b"NAME")))
    return out


@pytest.mark.parametrize("endpoint", ["login", "token", "token-json"])
def test_the_answers_do_not_tell_an_existing_account_from_a_made_up_one(endpoint):
    """Seven wrong passwords for a real and a made-up username (from different desks): the same statuses and
    bodies in the same order, including the lockout on the fifth and after."""
    UserFactory(username="expert7")
    call = {"login": lambda u, p: _login(u, p, REMOTE_ADDR=READER_DESK if u == "expert7" else COORD_DESK),
            "token": lambda u, p: _token(u, p, REMOTE_ADDR=READER_DESK if u == "expert7" else COORD_DESK),
            "token-json": lambda u, p: _token(u, p, json_body=True,
                                              REMOTE_ADDR=READER_DESK if u == "expert7" else COORD_DESK)}[endpoint]
    real, made_up = _answers(call, "expert7"), _answers(call, "expert8")
    assert real == made_up
    assert [s for s, _ in real] == ([200] * 4 if endpoint == "login" else [400] * 4) + [429] * 3


def test_the_login_page_and_the_token_endpoint_count_toward_one_lockout():
    UserFactory(username="stat1")
    for i in range(3):
        assert _token("stat1", f"wrong-{i}", json_body=True, REMOTE_ADDR=READER_DESK).status_code == 400
    assert _fail(2, "stat1", REMOTE_ADDR=READER_DESK) == [200, 429]
    assert _token("stat1", PASSWORD, json_body=True, REMOTE_ADDR=READER_DESK).status_code == 429
    assert _login("stat1", PASSWORD, REMOTE_ADDR=READER_DESK).status_code == 429


def test_the_lockout_ends_after_the_cool_off(settings):
    UserFactory(username="coord")
    _fail(5, "coord", REMOTE_ADDR=READER_DESK)
    cooloff = settings.AXES_COOLOFF_TIME
    AccessAttempt.objects.update(attempt_time=timezone.now() - cooloff + dt.timedelta(minutes=1))
    assert _login("coord", PASSWORD, REMOTE_ADDR=READER_DESK).status_code == 429  # a minute left
    AccessAttempt.objects.update(attempt_time=timezone.now() - cooloff - dt.timedelta(seconds=5))
    assert _login("coord", PASSWORD, REMOTE_ADDR=READER_DESK).status_code == 302
    assert not AccessAttempt.objects.filter(username="coord").exists()


def test_a_right_password_clears_the_failures_of_that_desk_only():
    """Before (AXES_RESET_ON_SUCCESS off): four typos, a good login, then one typo within 15 minutes locked the
    person out."""
    UserFactory(username="reader2")
    _fail(4, "reader2", REMOTE_ADDR=READER_DESK)
    _fail(4, "reader2", REMOTE_ADDR=COORD_DESK)
    assert _login("reader2", PASSWORD, REMOTE_ADDR=READER_DESK).status_code == 302
    assert _fail(4, "reader2", REMOTE_ADDR=READER_DESK) == [200] * 4
    assert _login("reader2", PASSWORD, REMOTE_ADDR=READER_DESK).status_code == 302
    # The other desk's four failures were not cleared by a login elsewhere: one more locks it.
    assert _fail(1, "reader2", REMOTE_ADDR=COORD_DESK) == [429]


def test_a_lockout_does_not_end_a_session_or_token_already_held():
    coord = UserFactory(username="coord")
    signed_in = Client()
    signed_in.force_login(coord)
    api = token_client(coord)
    _fail(5, "coord", REMOTE_ADDR="127.0.0.1")  # the test client's own address: the same desk
    assert _login("coord", PASSWORD, REMOTE_ADDR="127.0.0.1").status_code == 429
    assert signed_in.get(reverse("home")).status_code == 200
    assert api.get(reverse("trial-list")).status_code == 200


@pytest.mark.parametrize("length", [81, 151, 300, 5000])
def test_an_overlong_username_is_refused_and_counted_never_a_500(length):
    """Before: over 80 characters the access audit's object id, over 255 axes's username column, overflowed: a
    DataError (500) on the login page and the token endpoint, from anyone, signed in or not."""
    name = "é" * length
    login = [_login(name, f"wrong-{i}", REMOTE_ADDR=READER_DESK).status_code for i in range(3)]
    token = [_token(name, f"wrong-{i}", json_body=True, REMOTE_ADDR=READER_DESK).status_code for i in range(2)]
    assert login == [200, 200, 200] and token == [400, 429]  # counted together: the fifth locks
    assert _login(name, "again", REMOTE_ADDR=READER_DESK).status_code == 429
    failed = AuditEntry.objects.filter(action="auth:login_failed").order_by("pk").last()
    assert failed.after["username"] == name[:150] and failed.object_id == name[:80]


def test_an_inactive_account_answers_as_a_made_up_one_even_with_its_right_password():
    UserFactory(username="gone", is_active=False)
    gone = _login("gone", PASSWORD, REMOTE_ADDR=READER_DESK)
    made_up = _login("gone2", PASSWORD, REMOTE_ADDR=COORD_DESK)
    assert gone.status_code == made_up.status_code == 200
    assert _CSRF.sub(b"", gone.content).replace(b"gone", b"N") == _CSRF.sub(b"", made_up.content).replace(
        b"gone2", b"N")
