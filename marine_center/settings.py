"""Settings for the Marine Service Center.

Every deployment-specific value comes from the environment (django-environ).
Nothing here is assigned at import time by other modules.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env (written by `make run` for development: DEBUG=1 and a generated SECRET_KEY) fills in
# what the environment does not set; ENV_FILE names another file.
ENV_FILE = Path(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG:
        # Throwaway key for development only (the tests' own lives in settings_test).
        SECRET_KEY = "insecure-dev-key-do-not-use-in-production-" + "x" * 20
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (make run writes one to .env).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "simple_history",
    "django_tasks",
    "django_tasks_db",
    "core",
    "audit",
    "accounts",
    "maintenance",
    "emergencies",
    "alerts",
    "forwarding",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.AuditContextMiddleware",
    # Errors under /api/ always in the JSON envelope (DEBUG's HTML pages included).
    "marine_center.middleware.ApiErrorEnvelopeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below)
    "csp.middleware.CSPMiddleware",
    # Last: a view's exception becomes its response in the request's own thread (ASGI leak, issue 12.10).
    "marine_center.middleware.ExceptionsInRequestThreadMiddleware",
]

ROOT_URLCONF = "marine_center.urls"

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

WSGI_APPLICATION = "marine_center.wsgi.application"
ASGI_APPLICATION = "marine_center.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DATABASE_POOL", default=False):
    # psycopg's connection pool (Django's docs: under ASGI use it rather than persistent
    # connections); connections, and the capture statements prepared on them, outlive requests
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=10),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # required with the pool

# A cache every process shares (the lock-out and rate limits count in it): the database cache
# table (created by migration accounts 0003) unless CACHE_URL names another, e.g. redis://host:6379/1
CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://django_cache")}

# Least privilege on PostgreSQL (docs/production.md "Database roles"): DATABASE_URL is the
# application role; `manage.py migrate` connects as DATABASE_OWNER_URL and the audit purge as
# DATABASE_PURGE_URL, each defaulting to DATABASE_URL (one superuser URL keeps working in
# development). The purge gets a connection alias of its own only when its URL differs.
DATABASE_OWNER_URL = env.str("DATABASE_OWNER_URL", default="")
_purge_url = env.str("DATABASE_PURGE_URL", default="")
if _purge_url and _purge_url != env.str("DATABASE_URL", default=""):
    DATABASES["purge"] = {**env.db_url_config(_purge_url), "TEST": {"MIRROR": "default"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.ApprovedUserBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Django's default display of dates and times (the admin): "2026-12-02 05:44:13 UTC", as the portal writes them
FORMAT_MODULE_PATH = ["marine_center.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "media/"  # never served directly: downloads go through a permission-checked view

# Attachments
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
ATTACHMENT_ALLOWED_EXTENSIONS = env.list(
    "ATTACHMENT_ALLOWED_EXTENSIONS",
    default=["pdf", "png", "jpg", "jpeg", "gif", "txt", "csv", "doc", "docx", "xls", "xlsx"],
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): every page loads scripts, styles, images and data from this
# site only; no inline script, inline style or eval is allowed anywhere (the templates keep theirs
# in static files). The API documentation views relax it for what their vendored bundles need
# (marine_center/api_docs.py). docs/production.md "Content-Security-Policy".
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    },
}
# Transport security, for a site served over TLS (docs/production.md "Transport security"). Each is
# off unless set, so development and the tests' plain-HTTP servers keep working; `check --deploy`
# warns about every one left off in production.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SESSION_COOKIE_SAMESITE = env.str("SESSION_COOKIE_SAMESITE", default="Lax")
CSRF_COOKIE_SAMESITE = env.str("CSRF_COOKIE_SAMESITE", default="Lax")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# The header a TLS-terminating proxy sets to say the request came over HTTPS, e.g.
# SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto. Only set it behind a proxy that overwrites that header
# on every request: otherwise a client could claim HTTPS. Unset: no header is believed.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "marine_center.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "marine_center.api.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON only: the interactive documentation is Swagger UI at /api/docs/. DRF's browsable API is
    # left out because its templates carry inline styles the Content-Security-Policy refuses.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "marine_center.parsers.StrictJSONParser",  # DRF's, refusing deep nesting and lone surrogates
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "marine_center.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "marine_center.openapi.AutoSchema",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": timedelta(hours=env.int("API_TOKEN_TTL_HOURS", default=10)),
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Marine Service Center API",
    "DESCRIPTION": "Maintenance, emergencies, inventory, accounts and the real-time audit trail.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Audit (read through audit.conf accessors)
AUDIT_TRUSTED_PROXIES = env.list("AUDIT_TRUSTED_PROXIES", default=[])
# PostgreSQL: the capture's statements are prepared once per connection (off behind a pooler
# that cannot keep prepared statements, e.g. PgBouncer before 1.21 in transaction mode)
AUDIT_PREPARED_STATEMENTS = env.bool("AUDIT_PREPARED_STATEMENTS", default=True)
AUDIT_RETENTION_DAYS = {
    "activity_logs": env.int("AUDIT_RETENTION_ACTIVITY_DAYS", default=365),
    "system_events": env.int("AUDIT_RETENTION_EVENTS_DAYS", default=365),
    "audit_trail": env.int("AUDIT_RETENTION_TRAIL_DAYS", default=7 * 365),
    "update_history": env.int("AUDIT_RETENTION_HISTORY_DAYS", default=7 * 365),
}
# Tamper evidence: the newest seal is also written to this file, signed with AUDIT_SEAL_KEY
# (required unless DEBUG; keep it off the database server). See docs/production.md.
AUDIT_SEAL_FILE = env.str("AUDIT_SEAL_FILE", default=str(BASE_DIR / "var" / "audit-seal.json"))
AUDIT_SEAL_KEY = env.str("AUDIT_SEAL_KEY", default="")
# The Ed25519 key that signs seals and export packs: a PEM file (or the PEM text in AUDIT_SIGNING_KEY),
# required unless DEBUG (then generated beside the seal file). See docs/operations.md "Seals".
AUDIT_SIGNING_KEY_FILE = env.str("AUDIT_SIGNING_KEY_FILE", default="")
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
# Development only: a missing seal key is a fixed development key and a missing signing key is
# generated beside the seal file (system checks audit.E003/E005 refuse both otherwise).
AUDIT_DEVELOPMENT_KEYS = DEBUG

# The login lock-out (read through accounts.conf; policy in docs/production.md "Login lock-out"):
# failures per user id from one client IP, and per user id from all IPs, in a window of minutes.
# The variables were named AUDIT_LOCKOUT_* before; those names are still read when the new ones are unset.
ACCOUNTS_LOCKOUT_THRESHOLD = env.int("ACCOUNTS_LOCKOUT_THRESHOLD", default=env.int("AUDIT_LOCKOUT_THRESHOLD", default=5))
ACCOUNTS_LOCKOUT_CEILING = env.int("ACCOUNTS_LOCKOUT_CEILING", default=env.int("AUDIT_LOCKOUT_CEILING", default=50))
ACCOUNTS_LOCKOUT_MINUTES = env.int("ACCOUNTS_LOCKOUT_MINUTES", default=env.int("AUDIT_LOCKOUT_MINUTES", default=15))
# Self-registration attempts per client IP (API and portal together) in a window of minutes.
ACCOUNTS_REGISTRATION_LIMIT = env.int("ACCOUNTS_REGISTRATION_LIMIT", default=10)
ACCOUNTS_REGISTRATION_MINUTES = env.int("ACCOUNTS_REGISTRATION_MINUTES", default=60)

# Background work: Django's task framework API (the django-tasks backport, imported only through
# core/background.py). TASKS_BACKEND=database (default: tasks are rows of the project's own
# database) or rq (Redis at TASKS_REDIS_URL, else REDIS_URL); `manage.py run_worker` serves either
# (on rq it runs django-rq's worker with its scheduler). Queues: "default" (events, deliveries),
# "forwarding" (the audit stream to monitoring sinks) and "ops" (sealing, verification, purging;
# served only on the ops host). Every queue is mapped to Redis on rq.
BACKGROUND_QUEUES = ["default", "forwarding", "ops"]
TASKS_BACKEND = env.str("TASKS_BACKEND", default="database")
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
TASKS_REDIS_URL = env.str("TASKS_REDIS_URL", default=REDIS_URL)
if TASKS_BACKEND == "rq":
    INSTALLED_APPS.append("django_rq")
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": BACKGROUND_QUEUES}}
    RQ_QUEUES = {name: {"URL": TASKS_REDIS_URL, "DEFAULT_TIMEOUT": 3600} for name in BACKGROUND_QUEUES}
elif TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": BACKGROUND_QUEUES}}
else:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be 'database' or 'rq', not {TASKS_BACKEND!r}.")
# Worker liveness: a worker writes its heartbeat every BACKGROUND_HEARTBEAT seconds; a task RUNNING
# longer than BACKGROUND_LEASE seconds whose worker has not been seen for that long is run again.
BACKGROUND_HEARTBEAT = env.float("BACKGROUND_HEARTBEAT", default=5.0)
BACKGROUND_LEASE = env.float("BACKGROUND_LEASE", default=60.0)
# Retries of a failed task (database backend): at most BACKGROUND_MAX_ATTEMPTS runs, waiting
# BACKGROUND_RETRY_BASE * 2**(attempt-1) seconds between them, at most BACKGROUND_RETRY_CAP.
BACKGROUND_MAX_ATTEMPTS = env.int("BACKGROUND_MAX_ATTEMPTS", default=3)
BACKGROUND_RETRY_BASE = env.float("BACKGROUND_RETRY_BASE", default=2.0)
BACKGROUND_RETRY_CAP = env.float("BACKGROUND_RETRY_CAP", default=300.0)
# Periodic jobs (`manage.py run_scheduler`), intervals in seconds; each runs once per period
# however many schedulers run. Periods are aligned to the UTC epoch (daily = at 00:00 UTC).
AUDIT_SEAL_EVERY = env.float("AUDIT_SEAL_EVERY", default=60.0)
AUDIT_VERIFY_EVERY = env.float("AUDIT_VERIFY_EVERY", default=3600.0)
AUDIT_PURGE_EVERY = env.float("AUDIT_PURGE_EVERY", default=86400.0)
# Where the scheduled purge archives what it deletes (a new gzip'd JSON Lines file per run).
AUDIT_ARCHIVE_DIR = env.str("AUDIT_ARCHIVE_DIR", default=str(BASE_DIR / "var" / "archive"))

# Forwarding of the audit tables to security monitoring (docs/operations.md "Forwarding"): sink URLs,
# comma-separated: syslog+tcp://host:514, syslog+tls://host:6514?ca=/etc/ca.pem, syslog+udp://host:514,
# https://TOKEN@splunk:8088/services/collector/event, https://otel:4318/v1/logs, https://host/path (JSON Lines)
AUDIT_FORWARD_SINKS = env.list("AUDIT_FORWARD_SINKS", default=[])
AUDIT_FORWARD_EVERY = env.float("AUDIT_FORWARD_EVERY", default=2.0)  # seconds between runs (0: off)
AUDIT_FORWARD_BATCH = env.int("AUDIT_FORWARD_BATCH", default=500)  # rows per batch sent
AUDIT_FORWARD_TIMEOUT = env.float("AUDIT_FORWARD_TIMEOUT", default=10.0)  # seconds per connection/request
AUDIT_FORWARD_SETTLE = env.float("AUDIT_FORWARD_SETTLE", default=10.0)  # seconds a gap in ids is waited for
AUDIT_FORWARD_RUN_FOR = env.float("AUDIT_FORWARD_RUN_FOR", default=30.0)  # seconds one run goes on
AUDIT_FORWARD_LAG_ALERT = env.float("AUDIT_FORWARD_LAG_ALERT", default=300.0)  # warning event above (seconds)
AUDIT_FORWARD_SOURCE = env.str("AUDIT_FORWARD_SOURCE", default="msc")  # first part of the records' stable ids
# error reports (DEBUG page, error e-mails) hide the sink URLs' tokens like other secrets
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.debug.ReporterFilter"

# E-mail (alerts): EMAIL_URL (smtp://user:password@host:587, smtp+tls://...) or the usual EMAIL_*;
# in development the file backend writes each message under var/mail/ so a person can read it
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env.str(
        "EMAIL_BACKEND",
        default="django.core.mail.backends.filebased.EmailBackend" if DEBUG
        else "django.core.mail.backends.smtp.EmailBackend",
    )
    EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Marine Service Center <alerts@localhost>")
# Alert deliveries: attempts before a delivery is given up, and the first retry's delay (doubling)
ALERT_MAX_ATTEMPTS = env.int("ALERT_MAX_ATTEMPTS", default=5)
ALERT_RETRY_SECONDS = env.float("ALERT_RETRY_SECONDS", default=30.0)
# The alerts' sweep (events whose processing task never came, deliveries due or of dead workers), in seconds
ALERT_SWEEP_EVERY = env.float("ALERT_SWEEP_EVERY", default=10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
