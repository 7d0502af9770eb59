"""DRF pieces that know no app: the JSON endpoints the pages call."""
from __future__ import annotations

from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer


class PageJSONView:
    """Mixin for a DRF view that serves the pages' own JSON (outside /api/), guarded like the pages: login required,
    so LoginRequiredMiddleware sends the anonymous to the login page (DRF marks its views login_not_required, which
    would make that a 401), and CSRF checked by the middleware for every unsafe method, signed in or not (DRF marks
    its views csrf_exempt and checks only session-authenticated requests); JSON only; the permission check left to
    the handler so that a method the view does not take is 405 before it, as on the pages. Left out of the API
    schema by the view's extend_schema."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    @classmethod
    def as_view(cls, **initkwargs):
        view = super().as_view(**initkwargs)
        view.login_required = True
        view.csrf_exempt = False
        return view
