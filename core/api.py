"""DRF pieces that know no app: the JSON endpoints the pages call."""
from __future__ import annotations

from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer


class PageJSONView:
    """Mixin for a DRF view that serves the pages' own JSON (outside /api/): login required like the pages, so
    LoginRequiredMiddleware sends the anonymous to the login page (DRF marks its views login_not_required, which
    would make them a 401), JSON only, and the permission check left to the handler so that a method the view
    does not take is 405 before it, as on the pages. Left out of the API schema by the view's extend_schema."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    @classmethod
    def as_view(cls, **initkwargs):
        view = super().as_view(**initkwargs)
        view.login_required = True
        return view
