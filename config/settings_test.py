"""Settings of the test suite (pyproject.toml's `DJANGO_SETTINGS_MODULE`): production settings plus what tests
need. Servers that tests start as subprocesses (Celery worker, gunicorn; tests/processes.py) inherit it via
the environment pytest-django sets, so users created in the test process log in there too."""
from config.settings import *  # noqa: F403

# PBKDF2 costs ~0.2 s per user; tests create hundreds. Never for production: MD5 is not a password hash.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Pages render without `collectstatic`; media go to a per-test folder (tests/conftest.py sets MEDIA_ROOT).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Lockouts after failed logins would leak between tests; tests/security/test_hardening.py turns them on.
AXES_ENABLED = False

# Analysis runs finish inside the request that asks for them, as most tests expect; the demo runs them in a thread
# (tests/analysis_app/test_run_progress.py turns that on).
ANALYSIS_EAGER_IN_THREAD = False
