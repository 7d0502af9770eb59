"""The fault tests run the app with DEBUG off, which refuses the demo audit key: both the server and this process
(which runs `verify_all` on what the server wrote) use one test key (trial.audit signs chain heads with it)."""
from __future__ import annotations

import secrets

import pytest

RELIABILITY_AUDIT_KEY = "reliability-audit-" + secrets.token_hex(24)


@pytest.fixture(autouse=True)
def _audit_signing_key(settings):
    settings.AUDIT_SIGNING_KEY = RELIABILITY_AUDIT_KEY
