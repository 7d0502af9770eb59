"""Invitations and password reset through Django's password-reset machinery (issue 17).

A person added without a password gets an unusable one and an email with a one-time set-password link: Django's
reset token, which stops working once a password is set, and after PASSWORD_RESET_TIMEOUT. Password reset works
for everyone with an email, including invited people who never set one (Django's own form skips accounts without a
usable password, which here means "invited", not "managed elsewhere").
"""
from __future__ import annotations

import unicodedata

from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode


def _same_email(a: str, b: str) -> bool:
    # As Django's own form compares them (NFKC, case-folded): no look-alike address receives another's link.
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()


class PasswordResetForm(auth_forms.PasswordResetForm):
    def get_users(self, email):
        User = get_user_model()
        email_field = User.get_email_field_name()
        return (u for u in User._default_manager.filter(**{f"{email_field}__iexact": email, "is_active": True})
                if _same_email(email, getattr(u, email_field) or ""))


def needs_invitation(user) -> bool:
    """A new account without a password that has never logged in: it can only be reached through a link."""
    return not user.has_usable_password() and user.last_login is None


def send_invitation(user, *, domain: str, use_https: bool, invited_to: str = "") -> bool:
    """Email `user` a one-time link to set their password. False when the account has no email address."""
    if not user.email:
        return False
    context = {
        "email": user.email, "domain": domain, "site_name": domain, "protocol": "https" if use_https else "http",
        "uid": urlsafe_base64_encode(force_bytes(user.pk)), "user": user,
        "token": default_token_generator.make_token(user), "invited_to": invited_to,
    }
    PasswordResetForm().send_mail("registration/invitation_subject.txt", "registration/invitation_email.txt",
                                  context, None, user.email)
    return True
