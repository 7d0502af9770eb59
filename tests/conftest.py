"""Test setup. The suite talks to real PostgreSQL and Redis; a missing service fails the run (never skips)."""
from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    problems = []
    if settings.SETTINGS_MODULE != "config.settings_test":  # an exported variable beats pyproject's
        problems.append(f"tests run on config.settings_test, not {settings.SETTINGS_MODULE}")
    if os.environ.get("CI") == "true" and "postgresql" not in engine:
        problems.append(f"CI must run on PostgreSQL, DATABASE_URL gives {engine}")
    if "postgresql" in engine:
        db = settings.DATABASES["default"]
        if not _reachable(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)):
            problems.append("PostgreSQL is not reachable at DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    if not _reachable(host, int(port or 6379)):
        problems.append(f"Redis is not reachable at {redis_url}")
    if problems:
        pytest.exit("Required services missing: " + "; ".join(problems), returncode=3)


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.requirement("ID", ...)`: each id must be in docs/requirements.yaml; it goes into the JUnit XML
    as a `requirement` property, which the validation report reads (core/validation_report.py)."""
    from pathlib import Path

    from core.validation_report import PROPERTY, load_requirements

    known = {r.id for r in load_requirements(Path(config.rootpath) / "docs" / "requirements.yaml")}
    for item in items:
        for mark in item.iter_markers(PROPERTY):
            for rid in mark.args:
                if rid not in known:
                    raise pytest.UsageError(f"{item.nodeid}: requirement {rid!r} is not in docs/requirements.yaml")
                item.user_properties.append((PROPERTY, rid))


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    """Each test its own media folder; the rest of the test settings are in config/settings_test.py."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


from tests.browser import browser, page  # noqa: E402,F401  (fixtures)
from tests.factories.trial import trial_setup  # noqa: E402,F401  (fixture)
