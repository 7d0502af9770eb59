"""Settings, read from the environment (django-environ).

Defaults suit the demo: SQLite file, tasks run eagerly in-process, DEBUG on.
Production sets DEBUG=false, SECRET_KEY, DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis).
"""
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEMO_SECRET_KEY = "demo-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default=DEMO_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEMO_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (the demo key is public).")
# Signs the audit chains' heads (trial.audit): kept outside the database and apart from SECRET_KEY, so neither
# database access nor a leaked SECRET_KEY is enough to rewrite the audit log unnoticed.
DEMO_AUDIT_SIGNING_KEY = "demo-insecure-audit-signing-key-change-me-0123456789abcdef"
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default=DEMO_AUDIT_SIGNING_KEY)
if not DEBUG and AUDIT_SIGNING_KEY == DEMO_AUDIT_SIGNING_KEY:
    raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be set when DEBUG is off (the demo key is public).")
if not DEBUG and (len(AUDIT_SIGNING_KEY) < 32 or AUDIT_SIGNING_KEY == SECRET_KEY):
    raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be at least 32 random characters and differ from SECRET_KEY.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: nothing fetched from a CDN
    "axes",
    "pgtrigger",
    "pghistory",  # row-level history by triggers (trial.models.history)
    # Ours, from the base up; dependencies point one way (docs/architecture.md, checked by lint-imports).
    "core",
    "trial",
    "imaging",
    "inference",
    "reading",
    "rating",
    "enrolment",
    "analysis",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.RequestUserMiddleware",
    "trial.middleware.HistoryMiddleware",  # the user and URL on a request's row-history events (PostgreSQL)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "core.middleware.LoginRequiredMiddleware",
    "axes.middleware.AxesMiddleware",
    "core.light_api.LightApiMiddleware",  # last: heartbeat and autosave without DRF (docs/performance.md)
]
# The light lane's routes (core.light_api): URL name -> a handler calling the same service as the API view.
LIGHT_API = {
    "reading-api:heartbeat": "reading.api.light_heartbeat",
    "reading-api:autosave": "reading.api.light_autosave",
    "rating-autosave": "rating.api.light_autosave",
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "core.auth.ModelBackend",  # Django's, the signed-in user loaded by one precompiled SELECT (docs/performance.md)
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
# Persistent connections (CONN_MAX_AGE seconds, 0 = one per request) are checked before reuse at the start of each
# request, so a server restarted under a running app costs the requests in flight, not every later one.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=DATABASES["default"].get("CONN_MAX_AGE", 0))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
_POSTGRESQL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if _POSTGRESQL and env.bool("DB_PREPARED_STATEMENTS", default=True):
    # Server-side binding, and psycopg prepares a statement from its second run on this connection: PostgreSQL then
    # plans the read's joins once per connection, not per request (docs/performance.md, "Prepared statements").
    # Off (DB_PREPARED_STATEMENTS=false) behind a transaction-mode pooler such as PgBouncer < 1.21.
    DATABASES["default"]["ENGINE"] = "core.db.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=env.int("DB_PREPARE_THRESHOLD", default=2))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite ignores row locks; a longer timeout keeps the demo's background threads from erroring. IMMEDIATE: a
    # transaction takes the write lock when it begins, so concurrent writers (import_cases --jobs, the demo's
    # threads) wait for it instead of failing at once when a read lock cannot be upgraded ("database is locked").
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Email: invitations and password reset (core/accounts.py). The demo prints them on the console; README says how
# to send through SMTP. A reset or invitation link works once and for PASSWORD_RESET_TIMEOUT seconds.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="cxr-trial <noreply@localhost>")
# The address people reach the site at: links in emails sent without a request (reminders from the beat task).
SITE_URL = env.str("SITE_URL", default="http://localhost:8000")
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 24 * 3600)

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# No project-level static folder: each app keeps its files in <app>/static/<app>/ (docs/architecture.md).
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "/media/"  # never served directly: images go through permission-checked views
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DICOM_MAX_FILE_BYTES = env.int("DICOM_MAX_FILE_BYTES", default=200 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = 500

# Sessions and cookies
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Cache and sessions (issue 19.2). With CACHE_URL (a Redis URL, e.g. redis://redis:6379/1) the cache is Redis and
# sessions are "cached_db": read from Redis, written through to the database, so a heartbeat or autosave makes
# no session query (3 queries instead of 4). Without it (the demo: SQLite, nothing else running) the cache is
# in-process and sessions stay in the database: a per-process cache must never hold sessions, since a logout in
# one gunicorn worker would not reach the others.
CACHE_URL = env.str("CACHE_URL", default="")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": CACHE_URL,  # one client per pool
                          "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="cxr")}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (core.middleware.ContentSecurityPolicyMiddleware): this origin only, no inline script.
CSP_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
              "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
              "frame-ancestors 'none'")
CSP_RELAXED: dict[str, str] = {}  # path prefix -> policy (none needed: the API docs load no inline script)
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# django-axes: lock out after repeated failed logins
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
# Reverse proxies in front of gunicorn (TLS ends there: SECURE_PROXY_SSL_HEADER), each appending to X-Forwarded-For.
# The lockout and the access audit take the client's address from the count-th entry from the right
# (trial.access_audit.client_ip); 0 (no proxy) uses REMOTE_ADDR. Too low, and everyone shares the proxy's address:
# anyone can lock a named colleague out by failing with their username. Too high, and a caller picks the address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "trial.access_audit.client_ip"
AXES_USERNAME_CALLABLE = "trial.access_audit.lockout_username"  # cut to 150: longer overflowed axes's column
# A right password clears that username+address's failures: a reader who mistyped four times and got in is not
# locked out later by one mistyped signature password (the failures would count for 15 minutes after the last).
AXES_RESET_ON_SUCCESS = True

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate challenge makes an unauthenticated API request a 401 (a client knows to
    # sign in), not a 403; requests without a token header still fall through to the session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSONParser with a fixed nesting limit: a deeply nested body is a 400, not a RecursionError (500).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cxr-trial API",
    "DESCRIPTION": "Reader trials of AI chest X-ray report generators.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],  # schema and docs: signed-in users only
    # One name per status set: the trial's; a read's and a rating task's (the same set); an analysis run's.
    "ENUM_NAME_OVERRIDES": {"TrialStatusEnum": "trial.models.Trial.Status",
                            "TaskStatusEnum": "reading.models.Read.Status",
                            "AnalysisRunStatusEnum": "analysis.models.AnalysisRun.Status",
                            "RatingPreferenceEnum": ["A", "B", "none"],
                            "ArenaPreferenceEnum": ["A", "B", "tie"]},  # the arena's explicit tie
}

# Celery: without a broker, tasks run eagerly in-process (the demo).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {"inference.tasks.*": {"queue": "gpu"}}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=300.0)
# Without a broker (tasks run in-process) an analysis run goes to a thread of its own, so that the page asking for
# it answers at once and polls the run's progress (analysis/services.py).
ANALYSIS_EAGER_IN_THREAD = env.bool("ANALYSIS_EAGER_IN_THREAD", default=True)
# `celery -A config beat`: drafts RUNNING past their time limit go back to the queue (inference/serving.py)
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-drafts": {"task": "inference.tasks.sweep_stale_drafts", "schedule": 300.0},
    # Email readers and experts with overdue work, once a day (enrolment/services.py; issue 17).
    "send-reminders": {"task": "enrolment.tasks.send_reminders", "schedule": 86400.0},
}

# Inference: the retrieval baseline needs no weights; a janus model version names a local path.
INFERENCE_DEFAULT_BACKEND = env.str("INFERENCE_DEFAULT_BACKEND", default="retrieval")
JANUS_WEIGHTS_PATH = env.str("JANUS_WEIGHTS_PATH", default="")
# CheXbert-F1 of the reports (issue 20 item 4): a local folder with chexbert.pth and bert-base-uncased's vocab.txt
# (inference/backends/chexbert.py; docs/ai-evaluation.md). Empty: the report says "not computed: no local weights".
CHEXBERT_WEIGHTS_DIR = env.str("CHEXBERT_WEIGHTS_DIR", default="")
# Where CheXbert runs (a torch device: "cpu", "cuda", "cuda:1"); bert-base on 2 CPU threads labels ~2-3 reports/s.
CHEXBERT_DEVICE = env.str("CHEXBERT_DEVICE", default="cpu")
# A draft task's time limit: load + 3 x max_new_tokens x measured s/token, kept between these (inference/serving.py)
INFERENCE_TIME_LIMIT_FLOOR_S = env.float("INFERENCE_TIME_LIMIT_FLOOR_S", default=120.0)
INFERENCE_TIME_LIMIT_CAP_S = env.float("INFERENCE_TIME_LIMIT_CAP_S", default=3000.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
