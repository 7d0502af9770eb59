"""Errors raised by services; views and the API turn them into clear messages."""


class TrialError(Exception):
    """A refused action. `code` is machine-readable, the message is for people."""

    code = "refused"
    status = 400

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class TrialLocked(TrialError):
    code = "trial_locked"
    status = 409


class NotAllowed(TrialError):
    code = "not_allowed"
    status = 403


class Conflict(TrialError):
    code = "conflict"
    status = 409


class InvalidInput(TrialError):
    code = "invalid"
    status = 400
