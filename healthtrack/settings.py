"""HealthTrack settings: everything comes from environment variables.

With nothing set the app runs on its embedded default (SQLite in ``var/`` and the
local-memory cache) in DEBUG mode. With ``DATABASE_URL`` and ``REDIS_URL`` it runs on
PostgreSQL and Redis. ``.env.example`` lists every variable with its default.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env is a convenience for developers; real deployments set the environment.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)

# Development-only fallbacks: predictable so the local database stays readable across
# restarts, and refused outright when DEBUG is off.
_DEV_SECRET_KEY = "django-insecure-healthtrack-local-development-only"  # noqa: S105 - DEBUG only
_DEV_FIELD_ENCRYPTION_KEY = "healthtrack-local-development-salt"

SECRET_KEY = env.str("SECRET_KEY", default="")
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
if not DEBUG:
    missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"{' and '.join(missing)} must be set when DEBUG is off "
            "(see .env.example; DEBUG=true is for local development only)."
        )
SECRET_KEY = SECRET_KEY or _DEV_SECRET_KEY
FIELD_ENCRYPTION_KEY = FIELD_ENCRYPTION_KEY or _DEV_FIELD_ENCRYPTION_KEY
# Key rotation: the previous keys keep decrypting until rotate_encryption_keys has
# re-encrypted everything under the newest ones (README: key rotation runbook).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
FIELD_ENCRYPTION_KEY_FALLBACKS = env.list("FIELD_ENCRYPTION_KEY_FALLBACKS", default=[])
# django-fernet-encrypted-fields reads its salts from SALT_KEY (newest first).
SALT_KEY = [FIELD_ENCRYPTION_KEY, *FIELD_ENCRYPTION_KEY_FALLBACKS]

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Where people reach this service; used in links the app prints (password-set links).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_ratelimit",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "healthtrack",
    "users",
    "metrics",
    "nutrition",
    "goals",
    "insights",
    "interop",
]

MIDDLEWARE = [
    # Outermost: request counts, statuses and latencies per view for /metrics.
    "healthtrack.observability.RequestMetricsMiddleware",
    "healthtrack.middleware.RequestIdMiddleware",
    "healthtrack.middleware.RequestLogMiddleware",
    "healthtrack.observability.MetricsEndpointMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "healthtrack.middleware.ApiPathMiddleware",
    "healthtrack.middleware.CorsMiddleware",
    "healthtrack.cached_reads.CachedReadMiddleware",
    "healthtrack.ratelimit.RateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "healthtrack.audit.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "healthtrack.urls"
WSGI_APPLICATION = "healthtrack.wsgi.application"
AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = ["users.backends.UsernameOrEmailBackend"]

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

# --- Database -------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
# django-prometheus' wrappers of Django's own backends time every query for /metrics;
# the PostgreSQL one keeps Django's connection pool (it only wraps the cursor class), and
# healthtrack.postgresql extends it so the pool checks only connections that sat idle.
if _db["ENGINE"] == "django.db.backends.postgresql":
    _db["ENGINE"] = "healthtrack.postgresql"
    _db.setdefault("OPTIONS", {})
    # Django's native psycopg pool. A request waits at most DB_POOL_TIMEOUT for a
    # connection, so a dead database answers 503 within 3 s instead of hanging a worker
    # (healthtrack.errors.database_unavailable). The pool gives up a series of reconnect
    # attempts after DB_POOL_RECONNECT_TIMEOUT and the next request starts a fresh one,
    # so its backoff never grows to minutes: recovery takes seconds, without a restart.
    _db["OPTIONS"].setdefault(
        "pool",
        {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=8),
            "timeout": env.float("DB_POOL_TIMEOUT", default=2.5),
            "reconnect_timeout": env.float("DB_POOL_RECONNECT_TIMEOUT", default=5.0),
        },
    )
    _db["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=3))
    _db["CONN_MAX_AGE"] = 0  # the pool owns connection lifetime
    # The pool checks a connection idle for a second or more before handing it out, so
    # connections broken by a database restart are replaced instead of failing a
    # request each (healthtrack/postgresql/base.py).
    _db["CONN_HEALTH_CHECKS"] = True
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    VAR_DIR.mkdir(exist_ok=True)
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    _db["OPTIONS"].setdefault("timeout", 20)
    _db["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# gunicorn's access line is the request's one log line and carries the app's fields
# (healthtrack.middleware.RequestLogMiddleware); gunicorn.conf.py turns it on when its
# access log is on.
REQUEST_LOG_BY_SERVER = env.bool("REQUEST_LOG_BY_SERVER", default=False)

# The audit trail's group commit (healthtrack.audit.AuditWriter): each request still
# waits until its row is committed. On by default on PostgreSQL; SQLite has one writer.
AUDIT_GROUP_COMMIT = env.bool("AUDIT_GROUP_COMMIT", default=_db["ENGINE"].endswith("postgresql"))
AUDIT_WRITE_TIMEOUT = env.float("AUDIT_WRITE_TIMEOUT", default=5.0)
# Rows of reads only, through the group-commit writer on PostgreSQL: committed without
# waiting for the WAL flush. The row is in the database before the answer leaves (a crash
# of the app loses nothing); a crash of PostgreSQL itself can lose the last ~0.6 s of
# read rows (3 x wal_writer_delay), and they do not wait for a synchronous standby.
# Every other row (changes, exports, sign-ins, denials) waits for the flush.
# docs/protection.md, "Audit trail".
AUDIT_READS_ASYNC_COMMIT = env.bool("AUDIT_READS_ASYNC_COMMIT", default=True)

# --- Cache ----------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "healthtrack.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="ht"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "PARSER_CLASS": "redis.connection._HiredisParser",
                # A hung Redis may cost at most ~100 ms of a request; after a
                # failure the breaker skips Redis until it answers again.
                "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.1),
                "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.1),
                "CONNECTION_POOL_KWARGS": {"max_connections": 64, "retry_on_timeout": False},
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "healthtrack",
        }
    }
# How long the cache is skipped after Redis fails before trying it again.
CACHE_RETRY_AFTER_SECONDS = env.float("CACHE_RETRY_AFTER_SECONDS", default=2.0)

REDIS_CACHE_EXPIRE_INSIGHTS = env.int("REDIS_CACHE_EXPIRE_INSIGHTS", default=3600)
REDIS_CACHE_EXPIRE_METRICS = env.int("REDIS_CACHE_EXPIRE_METRICS", default=300)
REDIS_CACHE_EXPIRE_PROFILE = env.int("REDIS_CACHE_EXPIRE_PROFILE", default=86400)
# Cache hits of these reads are answered before DRF (healthtrack/cached_reads.py).
CACHED_READS_ENABLED = env.bool("CACHED_READS_ENABLED", default=True)
CACHED_READS = ["insights.views.recommendations_cached_read", "metrics.views.summary_cached_read"]
# Plain requests on one's own data answered by the same middleware without DRF.
DIRECT_ROUTES_ENABLED = env.bool("DIRECT_ROUTES_ENABLED", default=True)
DIRECT_ROUTES = ["metrics.views.metric_list_direct", "metrics.views.metric_create_direct"]

# --- Rate limits (healthtrack/ratelimit.py; docs/protection.md) ---------------------
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATE_LIMIT_REQUESTS_PER_MINUTE = env.int("RATE_LIMIT_REQUESTS_PER_MINUTE", default=600)
RATE_LIMIT_REQUESTS_PER_SECOND = env.int("RATE_LIMIT_REQUESTS_PER_SECOND", default=10)
RATE_LIMIT_AUTH_ATTEMPTS_PER_IP = env.int("RATE_LIMIT_AUTH_ATTEMPTS_PER_IP", default=20)
RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME = env.int("RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME", default=5)
# django-ratelimit's own settings: its counters live in the default cache (Redis in
# production) under "rl:", and a cache that does not answer lets requests through.
RATELIMIT_ENABLE = RATE_LIMIT_ENABLED
RATELIMIT_USE_CACHE = "default"
RATELIMIT_CACHE_PREFIX = "rl:"
RATELIMIT_FAIL_OPEN = True
RATELIMIT_IP_META_KEY = "healthtrack.net.client_ip"
# django-ratelimit's cache checks know backends by exact class path: they call our
# ResilientRedisCache (a django_redis RedisCache subclass) unsupported (W001) and the
# embedded default's local-memory cache not shared (E003). The embedded default counts
# per process by design (one developer process; `check --deploy` warns, healthtrack.W003);
# healthtrack.E001 (healthtrack/checks.py) replaces both with a check that knows subclasses.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Passwords and accounts -----------------------------------------------------
PASSWORD_HASHERS = [
    "healthtrack.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- REST API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["users.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["healthtrack.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "healthtrack.pagination.LimitSkipPagination",
    "DEFAULT_SCHEMA_CLASS": "healthtrack.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "healthtrack.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

ACCESS_TOKEN_EXPIRE_MINUTES = env.int("ACCESS_TOKEN_EXPIRE_MINUTES", default=30)
# Tokens are signed with their own key, so rotating SECRET_KEY (field encryption,
# sessions) and rotating token keys are separate decisions. Unset, a key is derived from
# SECRET_KEY and `check --deploy` warns (healthtrack.W001).
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="")
JWT_SIGNING_KEY_DERIVED = not JWT_SIGNING_KEY
if JWT_SIGNING_KEY_DERIVED:
    JWT_SIGNING_KEY = hmac.new(SECRET_KEY.encode(), b"healthtrack.jwt", hashlib.sha256).hexdigest()
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("REFRESH_TOKEN_EXPIRE_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "LEEWAY": 5,
}

# --- OpenAPI --------------------------------------------------------------------
SPECTACULAR_SETTINGS = {
    "TITLE": "HealthTrack API",
    "DESCRIPTION": (
        "Health metrics, meals, water and goals, turned into ranked, explained "
        "recommendations. Authenticate with `POST /api/v1/auth/token` and send "
        "`Authorization: Bearer <access>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ServiceStatusEnum": ["ok", "error"],
        "GoalStatusEnum": "goals.models.GoalStatus",
        # Goal priority and insight severity share low/medium/high.
        "LevelEnum": "insights.models.Severity",
        "MetricTypeEnum": "metrics.registry.METRIC_TYPE_CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
    ],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# Namespace of the identifiers in FHIR exports (a URL or URN this deployment owns). Keep
# it stable: receiving systems recognise re-exported resources by it.
FHIR_SYSTEM_BASE = env.str("FHIR_SYSTEM_BASE", default="urn:healthtrack")

# --- Security -------------------------------------------------------------------
SECURE_TRANSPORT = env.bool("SECURE_TRANSPORT", default=not DEBUG)
SECURE_SSL_REDIRECT = SECURE_TRANSPORT
SESSION_COOKIE_SECURE = SECURE_TRANSPORT
CSRF_COOKIE_SECURE = SECURE_TRANSPORT
SECURE_HSTS_SECONDS = 31_536_000 if SECURE_TRANSPORT else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_TRANSPORT
SECURE_HSTS_PRELOAD = SECURE_TRANSPORT
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^health/?$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 3600

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"

# Clients see the first N-th address from the right of X-Forwarded-For only when we
# sit behind N proxies we trust; otherwise REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Request bodies: 1 MB by default; views that take more say so (bulk ingest, imports).
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1_048_576)
DATA_UPLOAD_MAX_MEMORY_SIZE = None  # enforced per view by BodySizeLimitMiddleware
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Metrics (/metrics, healthtrack.observability) ---------------------------------
# Addresses or CIDR ranges (as seen by healthtrack.net.client_ip) allowed to scrape.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
for _entry in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_entry.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS: '{_entry}' is not an IP address or CIDR range."
        ) from None
# Finer than django-prometheus' default at the low end: most requests take milliseconds.
PROMETHEUS_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"),
)  # fmt: skip

# --- Logging --------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'text', not '{LOG_FORMAT}'.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "healthtrack.logging.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "healthtrack.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django logs 4xx responses as warnings with the path; our own error handler
        # already logs what matters, without request bodies.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}
