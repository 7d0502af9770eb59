"""Access and account events in the audit log (issue 18 item 1): logins, logouts, failed logins, lockouts, and
changes to a person's site-level rights (superuser, staff, active, permissions, groups). None of these belongs to
one trial, so they go to the site-level chain (``global``, trial.audit); a person's roles in a trial (Membership)
are granted and removed by trial.services, which record them in the trial's chains.

Connected in TrialConfig.ready(). Never recorded: passwords or any other credential.
"""
from __future__ import annotations

import ipaddress

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save

from core.middleware import request_user

from . import audit
from .models import AuditEntry

FLAGS = ("is_superuser", "is_staff", "is_active")
USER = "auth.User"


def client_ip(request) -> str:
    """The address of the person's machine: REMOTE_ADDR, or behind ``TRUSTED_PROXY_COUNT`` reverse proxies the
    address the outermost of them saw (the count-th entry from the right of X-Forwarded-For; each proxy appends the
    address it was called from, so entries further left are whatever the caller sent). django-axes keeps the login
    lockout per username and this address (AXES_CLIENT_IP_CALLABLE): behind a proxy REMOTE_ADDR is the proxy's,
    the same for everyone, and failing logins with a colleague's username from any desk locked the colleague out
    everywhere. A header with too few entries or no address there: REMOTE_ADDR."""
    if request is None:
        return ""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < hops:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-hops]))
    except ValueError:
        return remote


def on_login(sender, request, user, **kwargs) -> None:
    audit.record(actor=user, trial=None, action="auth:login", object_type=USER, object_id=str(user.pk),
                 after={"ip": client_ip(request)})


def on_logout(sender, request, user, **kwargs) -> None:
    if user is None:  # an anonymous session was flushed: nobody logged out
        return
    audit.record(actor=user, trial=None, action="auth:logout", object_type=USER, object_id=str(user.pk),
                 after={"ip": client_ip(request)})


USERNAME_MAX = 150  # auth.User.username's length: no account has a longer one
_OBJECT_ID_MAX = AuditEntry._meta.get_field("object_id").max_length


def lockout_username(request, credentials: dict | None = None) -> str | None:
    """The username django-axes counts a failure under (AXES_USERNAME_CALLABLE): axes's own choice (the
    credentials, else the posted form or body), cut to the longest username there can be. Before, a made-up
    username longer than axes's column (255) was a DataError: a 500 on the login page and the token endpoint."""
    if credentials:
        name = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        name = getattr(request, "data", request.POST).get(settings.AXES_USERNAME_FORM_FIELD)
    return None if name is None else str(name)[:USERNAME_MAX]


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # `credentials` has the password masked by Django; only the username is kept. No actor: nobody is logged in,
    # and the attempt is not attributable to the account it named. The entry's object id holds 80 characters (a
    # username 150: before, a longer failed username was a DataError, a 500); the whole username is in `after`.
    username = str(credentials.get("username", ""))[:USERNAME_MAX]
    audit.record(actor=None, trial=None, action="auth:login_failed", object_type=USER,
                 object_id=username[:_OBJECT_ID_MAX], after={"username": username, "ip": client_ip(request)})


def on_lockout(sender, request, username, ip_address, **kwargs) -> None:
    username = str(username)[:USERNAME_MAX]
    audit.record(actor=None, trial=None, action="auth:lockout", object_type=USER,
                 object_id=username[:_OBJECT_ID_MAX], after={"username": username, "ip": ip_address or ""})


def _flags(user) -> dict:
    return {f: getattr(user, f) for f in FLAGS}


def before_user_save(sender, instance, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        instance._audit_flags_before = None
        return
    old = sender.objects.filter(pk=instance.pk).values(*FLAGS).first()
    instance._audit_flags_before = old


def after_user_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    if created:
        audit.record(actor=request_user(), trial=None, action="auth:create_user", object_type=USER,
                     object_id=str(instance.pk), after={"username": instance.username, **_flags(instance)})
        return
    before = getattr(instance, "_audit_flags_before", None)
    if before is not None and before != _flags(instance):
        audit.record(actor=request_user(), trial=None, action="auth:rights", object_type=USER,
                     object_id=str(instance.pk), before=before, after=_flags(instance))


def _names(model, pks) -> list[str]:
    if model._meta.label == "auth.Permission":
        rows = model.objects.filter(pk__in=pks).values_list("content_type__app_label", "codename")
        return sorted(f"{app}.{code}" for app, code in rows)
    return sorted(model.objects.filter(pk__in=pks).values_list("name", flat=True))


def on_rights_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """Permissions or groups added to or removed from a user (or a group's permissions changed)."""
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    User = get_user_model()
    attr = {User.groups.through: "groups", User.user_permissions.through: "user_permissions"}.get(sender,
                                                                                                 "permissions")
    field = "groups" if attr == "groups" else "permissions"
    if action == "pre_clear":
        pk_set = set(getattr(instance, attr).values_list("pk", flat=True)) if not reverse else set()
        if not pk_set:
            return
    verb = "auth:grant" if action == "post_add" else "auth:revoke"
    owner = instance if not reverse else None
    if owner is None:  # changed from the other side (e.g. permission.user_set.add): one entry per user
        for pk in sorted(pk_set or ()):
            audit.record(actor=request_user(), trial=None, action=verb, object_type=model._meta.label,
                         object_id=str(pk), after={field: _names(type(instance), [instance.pk])})
        return
    audit.record(actor=request_user(), trial=None, action=verb, object_type=instance._meta.label,
                 object_id=str(instance.pk), after={field: _names(model, pk_set or ())})


def connect() -> None:
    User = get_user_model()
    user_logged_in.connect(on_login, dispatch_uid="audit-login")
    user_logged_out.connect(on_logout, dispatch_uid="audit-logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit-login-failed")
    user_locked_out.connect(on_lockout, dispatch_uid="audit-lockout")
    pre_save.connect(before_user_save, sender=User, dispatch_uid="audit-user-pre")
    post_save.connect(after_user_save, sender=User, dispatch_uid="audit-user-post")
    for through in (User.groups.through, User.user_permissions.through):
        m2m_changed.connect(on_rights_changed, sender=through, dispatch_uid=f"audit-rights-{through.__name__}")
    m2m_changed.connect(on_rights_changed, sender=Group.permissions.through, dispatch_uid="audit-group-perms")
