"""Invitations and password reset (issue 17): a person added without a password gets a one-time set-password link
through Django's password-reset machinery; everyone can reset their password."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories.trial import PASSWORD, make_trial
from trial.models import Trial

pytestmark = pytest.mark.django_db
User = get_user_model()
LINK = re.compile(r"https?://[^/\s]+(/accounts/reset/[^\s]+/)")


def _link(mail) -> str:
    return LINK.search(mail.body).group(1)


@pytest.fixture
def t():
    return make_trial(code="INV", status=Trial.Status.SETUP)


def _add(client, t, **data):
    assert client.login(username=t["coordinator"].username, password=PASSWORD)
    return client.post(reverse("trial:member_add", args=["INV"]),
                       {"role": "statistician", **data}, follow=True).content.decode()


def _set_password(client, link: str, password: str):
    r = client.get(link)  # Django swaps the token for a session marker and redirects to .../set-password/
    assert r.status_code == 302
    return client.post(r["Location"], {"new_password1": password, "new_password2": password})


def test_person_added_without_password_gets_a_one_time_link(client, t, mailoutbox):
    html = _add(client, t, username="newstat", email="newstat@example.org")
    assert "An invitation to set a password was emailed to newstat@example.org" in html
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["newstat@example.org"]
    assert "INV" in mailoutbox[0].subject and "newstat" in mailoutbox[0].body
    user = User.objects.get(username="newstat")
    assert not user.has_usable_password()
    link = _link(mailoutbox[0])
    client.logout()
    r = _set_password(client, link, "a-long-new-Passphrase-7")
    assert r.status_code == 302 and r["Location"] == reverse("password_reset_complete")
    assert client.login(username="newstat", password="a-long-new-Passphrase-7")
    client.logout()
    r = client.get(link, follow=True)  # one time only
    assert 'id="invalid-link"' in r.content.decode()


def test_no_invitation_with_a_password_or_without_email(client, t, mailoutbox):
    _add(client, t, username="withpw", email="withpw@example.org", password="another-long-Passphrase-3")
    assert mailoutbox == []
    html = _add(client, t, username="nomail")
    assert "has no password and no email address" in html and mailoutbox == []


def test_password_reset_for_everyone_including_invited_people(client, t, mailoutbox):
    reader = t["readers"][0].user
    reader.email = "reader@example.org"
    reader.save()
    User.objects.create_user("invited", email="invited@example.org")  # no password: invited, never logged in
    url = reverse("password_reset")
    for email in ("READER@example.org", "invited@example.org", "nobody@example.org"):
        r = client.post(url, {"email": email})
        assert r.status_code == 302 and r["Location"] == reverse("password_reset_done")  # same answer for all
    assert [m.to for m in mailoutbox] == [["reader@example.org"], ["invited@example.org"]]
    r = _set_password(client, _link(mailoutbox[0]), "reset-long-Passphrase-9")
    assert r.status_code == 302
    assert client.login(username=reader.username, password="reset-long-Passphrase-9")


def test_login_page_links_to_reset(client):
    assert reverse("password_reset") in client.get(reverse("login")).content.decode()


def test_api_adds_a_person_with_an_email_and_invites_them(t, mailoutbox):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    r = api.post(reverse("member-list", args=["INV"]),
                 {"username": "apistat", "role": "statistician", "email": "apistat@example.org"}, format="json")
    assert r.status_code == 201
    assert [m.to for m in mailoutbox] == [["apistat@example.org"]] and "/accounts/reset/" in mailoutbox[0].body
    r = api.post(reverse("member-list", args=["INV"]), {"username": "apistat", "role": "coordinator"}, format="json")
    assert r.status_code == 201 and len(mailoutbox) == 2  # a second role: the still-unset account is invited again
