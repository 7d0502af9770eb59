"""Errors raised by services; views and the API turn them into clear messages.

Code branches on `code` (an ErrorCode), never on the message text, which is for people and may change.
"""
from enum import StrEnum


class ErrorCode(StrEnum):
    """Machine-readable refusal codes: the API's `code` field, and what callers branch on."""

    REFUSED = "refused"
    TRIAL_LOCKED = "trial_locked"
    NOT_ALLOWED = "not_allowed"
    CONFLICT = "conflict"
    INVALID = "invalid"
    ENROLMENT_CLOSED = "enrolment_closed"
    ALREADY_SUBMITTED = "already_submitted"
    NOT_AVAILABLE = "not_available"
    NEEDS_REVIEW = "needs_review"
    OUTSTANDING_WORK = "outstanding_work"
    NOT_IN_SETUP = "not_in_setup"


class TrialError(Exception):
    """A refused action. `code` is machine-readable, the message is for people."""

    code: str = ErrorCode.REFUSED
    status = 400

    def __init__(self, message: str, code: ErrorCode | str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class TrialLocked(TrialError):
    code = ErrorCode.TRIAL_LOCKED
    status = 409


class NotAllowed(TrialError):
    code = ErrorCode.NOT_ALLOWED
    status = 403


class Conflict(TrialError):
    code = ErrorCode.CONFLICT
    status = 409


class InvalidInput(TrialError):
    code = ErrorCode.INVALID
    status = 400


def storable_text(value: str) -> bool:
    """Whether PostgreSQL can store the text: no NUL, valid UTF-8 (JSON's \\u0000 and lone \\ud800 escapes parse;
    saving them was a server error, on the API and the light lane alike)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_storable_text(value: str, what: str) -> str:
    """``value`` unchanged when PostgreSQL can store it (storable_text), else InvalidInput (a 400) naming ``what``."""
    if not storable_text(value):
        raise InvalidInput(f"The {what} contains a character that cannot be stored (a NUL or a lone surrogate).")
    return value
