"""The light lane: the reading room's most frequent writes answered without the URL dispatch and DRF (issue 19.2;
docs/performance.md "The light lane").

A reader sends a heartbeat every 15 s and an autosave every few seconds while typing: about 20 of the ~26
requests of a read case. Through DRF each spent most of its CPU on the framework (request wrapping, content
negotiation, authentication classes, serializers), not on its one or two statements. This middleware, the last of
``MIDDLEWARE`` (so every other middleware has run: session, CSRF cookie, authentication, row-history context,
security headers on the way out), answers those requests itself when, and only when, the full path would answer
the same success (the handler's body is the API view's output serializer's data, rendered as DRF renders it):

* the request is a POST of a JSON object signed in by the session cookie (no ``Authorization`` header: token
  clients take DRF's path), the user is active and signed in, and Django's CSRF check accepts it (the same
  ``CsrfViewMiddleware.process_view`` DRF's SessionAuthentication calls);
* the body is a JSON object in the declared charset, parsed as DRF's JSONParser parses it (a UTF-8 BOM or an
  undeclared UTF-16 body is its 400, latin-1 text is read as latin-1), and the request accepts plain JSON (no
  ``Accept`` other than ``application/json`` or ``*/*``, no ``?format=``: DRF would answer those with a 406 that
  writes nothing, or its HTML page); the answer varies on ``Accept`` as DRF's does; it nests no deeper than
  ``core.parsers.MAX_JSON_DEPTH`` (the API's parser refuses deeper bodies);
* the URL is one of ``settings.LIGHT_API`` (URL name -> handler), and the handler, which calls the same service as
  the DRF view, returns a response.

Anything else -- a refusal, a 404, an invalid body, a handler that returns None -- goes down the full path, which
answers it as before (the service's transaction was rolled back, so it simply runs again there). The handlers
live in their apps (``reading.api.light_heartbeat`` ...); this module only routes.
"""
from __future__ import annotations

import json
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import Resolver404, resolve
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string
from rest_framework.renderers import JSONRenderer

from core.errors import TrialError
from core.parsers import nested_too_deep


@lru_cache(maxsize=8192)
def _route(path: str):
    """The URL name and arguments of a path, or None. Cached: a read's heartbeats and autosaves repeat its path
    ~20 times; bounded, so memory stays bounded whatever paths arrive."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.view_name, match.kwargs


def _csrf_view(request):  # a view that is not csrf_exempt, for the CSRF check
    return None


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check answering the reason instead of a logged 403 (as DRF's CSRFCheck): a refusal goes down
    the full path, which refuses and logs it once."""

    def _reject(self, request, reason):
        return reason


# The Accept headers for which DRF's content negotiation picks its JSONRenderer with no parameters (an ``indent``
# would change the bytes); any other goes down the full path.
_PLAIN_JSON = frozenset({"", "*/*", "application/json"})


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # as DRF's JSONParser: NaN and Infinity are a 400 on the full path


class LightApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.handlers = {name: import_string(path) for name, path in getattr(settings, "LIGHT_API", {}).items()}
        self.csrf = _CsrfCheck(get_response)
        self.renderer = JSONRenderer()  # DRF's own rendering: the bytes the full path sends

    def __call__(self, request):
        response = self._light(request) if self.handlers else None
        return response if response is not None else self.get_response(request)

    def _light(self, request) -> HttpResponse | None:
        if (request.method != "POST" or not request.path_info.startswith("/api/")
                or "HTTP_AUTHORIZATION" in request.META
                or request.content_type != "application/json"
                or request.META.get("HTTP_ACCEPT", "").strip() not in _PLAIN_JSON or "format" in request.GET):
            return None
        route = _route(request.path_info)
        handler = self.handlers.get(route[0]) if route else None
        user = getattr(request, "user", None)
        if handler is None or user is None or not user.is_authenticated or not user.is_active:
            return None
        if self.csrf.process_view(request, _csrf_view, (), {}) is not None:
            return None  # refused: the full path answers with the API's own 403
        try:
            # As DRF's JSONParser: the body decoded in the request's charset, then parsed (json.loads of bytes
            # would guess UTF-16 or skip a BOM, which DRF refuses). Nested past core.parsers' fixed limit (or the
            # recursion limit): the full path, whose parser answers it with a 400.
            text = request.body.decode(request.encoding or settings.DEFAULT_CHARSET) if request.body else "{}"
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, LookupError, RecursionError):
            return None
        if not isinstance(data, dict) or nested_too_deep(data):
            return None
        try:
            body = handler(request, data, **route[1])
        except (TrialError, Http404, PermissionDenied):
            return None  # the service rolled back; the full path answers the refusal in the API's words
        if body is None:
            return None
        response = HttpResponse(self.renderer.render(body), content_type="application/json")
        patch_vary_headers(response, ("Accept",))  # as DRF's answer (its content negotiation)
        return response
