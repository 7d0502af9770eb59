from contextvars import ContextVar

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Login required for every page. The API authenticates itself (session or token) and answers 401/403."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class ContentSecurityPolicyMiddleware:
    """Sets a Content-Security-Policy header on every response that has none (Django 5.2 has no built-in CSP).

    Scripts, styles, images and connections come from this origin only; no inline script (the templates load
    their JavaScript from static files), no plugins, no framing, forms post to this origin only. Inline styles stay
    allowed: templates size progress bars with style attributes, which a nonce cannot cover. Paths listed in
    settings.CSP_RELAXED get their own policy (none today: the API docs come from drf-spectacular-sidecar's static
    files with a separate init script). A view that sets its own policy (the analysis report) keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CSP_POLICY
        self.relaxed = list(getattr(settings, "CSP_RELAXED", {}).items())

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            policy = next((p for prefix, p in self.relaxed if request.path.startswith(prefix)), self.policy)
            response["Content-Security-Policy"] = policy
        return response


_request_user: ContextVar = ContextVar("request_user", default=None)
_request: ContextVar = ContextVar("request", default=None)


def request_user():
    """The user of the request being served, or None (shell, Celery task, management command). Lets a change made
    through the admin be attributed in the audit log (trial/access_audit.py) where no service passes the actor."""
    user = _request_user.get()
    return user if getattr(user, "is_authenticated", False) else None


def current_request():
    """The request being served, or None. Lets a failed electronic signature (trial.signatures) count toward the
    login lockout, which is kept per username and IP address of the request."""
    return _request.get()


class RequestUserMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request_user.set(getattr(request, "user", None))
        request_token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(request_token)
            _request_user.reset(token)
