"""Test clients as the app's callers are: a signed-in browser sending the CSRF cookie and header as the pages'
JavaScript does, and a token-authenticated API client."""
from __future__ import annotations

from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

CSRF = "a" * 32


def browser_client(user, csrf: bool = True) -> Client:
    """A signed-in browser with CSRF checks on, sending the CSRF cookie and header as read.js does."""
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    if csrf:
        c.cookies["csrftoken"] = CSRF
        c.defaults["HTTP_X_CSRFTOKEN"] = CSRF
    return c


def token_client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api
