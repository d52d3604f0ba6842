"""Settings shared by every environment; everything configurable comes from the environment."""

from datetime import timedelta
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

from realtime.conf import from_environment as realtime_from_environment

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORT = env.int("PORT", default=5000)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "inventory",
    "inventory.accounts",
    "realtime",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during the view into the answer.
    "inventory.accounts.lockout.LoginLockoutMiddleware",
]

ROOT_URLCONF = "inventory_site.urls"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

WSGI_APPLICATION = "inventory_site.wsgi.application"
ASGI_APPLICATION = "inventory_site.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that vanishes without resetting connections must not hang a connect (libpq waits
    # forever by default): the request is refused with `database_unavailable` instead.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env.bool("DATABASE_POOL", default=True):
    # Under ASGI Django's advice is a pool, not persistent connections: every hop of a consumer
    # to the ORM borrows a connection instead of forking a PostgreSQL backend (docs/performance.md).
    # A borrow waits at most `timeout` s. Recovery after an outage (docs/reliability.md): psycopg_pool
    # retries a failed connection with a doubling pause for `reconnect_timeout` s, then gives up until
    # a request asks again, so the first request after the database is back waits at most that long;
    # our backend's pool tests every idle connection once one is found dead (inventory_site/postgresql).
    DATABASES["default"]["ENGINE"] = "inventory_site.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "pool",
        {
            "min_size": env.int("DATABASE_POOL_MIN", default=2),
            "max_size": env.int("DATABASE_POOL_MAX", default=20),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=2),
            "reconnect_timeout": env.float("DATABASE_POOL_RECONNECT_TIMEOUT", default=0.5),
        },
    )
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several daphne threads write at once: wait for the lock instead of failing, and take
    # the write lock at BEGIN so a transaction never has to upgrade (and deadlock) later.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Unset: one process, in-memory channel layer and local-memory cache.
# Set: several daphne processes share the channel layer, cache, presence and rate limits in Redis.
REDIS_URL = env("REDIS_URL", default="")
REDIS_PREFIX = env("REDIS_PREFIX", default="inventory")

# Which channels-redis layer: "core" (lists, per-channel capacity) or "pubsub" (Redis pub/sub:
# one publish per group message, whatever the number of recipients).
REDIS_CHANNEL_LAYER = env("REDIS_CHANNEL_LAYER", default="core")

if REDIS_URL and REDIS_CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}:asgi"},
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # No read timeout: an idle receive blocks on Redis for its own 5 s wait, and redis-py's
                # default 5 s socket timeout would turn every quiet moment into a "lost" layer.
                # redis-py's pool raises MaxConnectionsError past 100 connections; when 1,000
                # sockets close at once their group_discard calls need more (docs/performance.md).
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 1000}],
                "prefix": f"{REDIS_PREFIX}:asgi",
                # Consumers refresh their group membership every heartbeat, so a long
                # expiry is only a safety net against members that vanished uncleanly.
                "group_expiry": 86400,
                "capacity": 1000,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sign-in and API tokens (inventory/accounts). The client's address is the one the last
# TRUSTED_PROXIES proxies report in X-Forwarded-For (0: the connection's own address; the
# production settings, the Procfile's, assume 1); never what a client writes in that header.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
# django-axes locks a username, and separately a client address, out for LOGIN_LOCKOUT_SECONDS
# after LOGIN_FAILURE_LIMIT failed logins on any door (pages, admin, token endpoint); the
# counts live in the cache (Redis when REDIS_URL is set: shared by every process).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "inventory.accounts.lockout.ResilientAxesCacheHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_LOCKOUT_SECONDS", default=900))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "inventory.accounts.lockout.lockout_key_address"
AXES_LOCKOUT_CALLABLE = "inventory.accounts.lockout.lockout_response"
AXES_VERBOSE = False
# Our subclass of django-axes' middleware is installed (its check looks for the class's own path).
SILENCED_SYSTEM_CHECKS = ["axes.W002"]
# Seconds an API token authenticates after it is issued (REST and socket); unset: no expiry.
API_TOKEN_TTL = env.int("API_TOKEN_TTL", default=None)

# Content-Security-Policy on every page (django-csp): the pages load scripts, styles and fonts
# from this site only and run no inline script. Style attributes stay allowed (a bar's width,
# a chart tick's offset); <style> elements do not. /api/docs/ relaxes it for Swagger UI.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Español")), ("en", _("Inglés"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Which months' inventories can be opened (pages, sockets and REST): from this many months back to
# this many ahead of the current one. Inventories already opened stay readable whatever their month.
INVENTORY_OPEN_MONTHS_BACK = env.int("INVENTORY_OPEN_MONTHS_BACK", default=24)
INVENTORY_OPEN_MONTHS_AHEAD = env.int("INVENTORY_OPEN_MONTHS_AHEAD", default=1)

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "inventory.accounts.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "inventory.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "inventory.api.exceptions.exception_handler",
    # Every JSON body is camelCase, errors too (issue 13).
    "NON_FIELD_ERRORS_KEY": "nonFieldErrors",
    # DRF's parsers, with a JSON parser that answers JSON nested too deep with a 400.
    "DEFAULT_PARSER_CLASSES": [
        "inventory.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "scan_write": env("API_SCAN_WRITE_RATE", default="600/min"),
        "login": env("API_LOGIN_RATE", default="20/min"),
    },
    # Throttles key anonymous clients on the address TRUSTED_PROXIES yields, not the whole header.
    "NUM_PROXIES": TRUSTED_PROXIES,
}

# Expected-list import (docs/reconciliation.md): a file over any of these is refused with a 400
# naming the limit, before it is parsed; an XLSX archive is checked from its directory.
EXPECTED_IMPORT = {
    "MAX_BYTES": env.int("EXPECTED_IMPORT_MAX_BYTES", default=20 * 1024 * 1024),
    "MAX_ROWS": env.int("EXPECTED_IMPORT_MAX_ROWS", default=100_000),
    "MAX_LINE_CHARS": env.int("EXPECTED_IMPORT_MAX_LINE_CHARS", default=64 * 1024),
    "MAX_UNCOMPRESSED_BYTES": env.int("EXPECTED_IMPORT_MAX_UNCOMPRESSED_BYTES", default=64 * 1024 * 1024),
    "MAX_SHARED_STRINGS_BYTES": env.int("EXPECTED_IMPORT_MAX_SHARED_STRINGS_BYTES", default=16 * 1024 * 1024),
    "MAX_COMPRESSION_RATIO": env.int("EXPECTED_IMPORT_MAX_COMPRESSION_RATIO", default=100),
    "MAX_ARCHIVE_ENTRIES": env.int("EXPECTED_IMPORT_MAX_ARCHIVE_ENTRIES", default=1000),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Inventario en vivo API",
    "DESCRIPTION": "Count a dealership's vehicles together, live.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Serve Swagger UI from this server: no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "inventory.api.schema.document_errors",
        "inventory.api.schema.document_links",
    ],
}

# The realtime settings: defaults and environment names in realtime/conf.py (`REALTIME_<KEY>`, and
# protocol v1's names such as `WEBSOCKET_PATH` and `DEBUG=websocket:*` as aliases).
REALTIME = realtime_from_environment(env)

# Operations: where and how `manage.py serve` listens, what the server allows slow clients, and the
# demo data of `make run`.
# The address `manage.py serve` listens on (--host overrides it): this machine only by default.
HOST = env("HOST", default="127.0.0.1")
# The ASGI server `manage.py serve` runs (--server overrides it): "daphne" or "uvicorn".
ASGI_SERVER = env("ASGI_SERVER", default="daphne")
# A connection whose request line and headers are not complete within this many seconds is closed
# with a 408 (slowloris); an idle keep-alive connection is closed after as long.
HTTP_HEADER_TIMEOUT = env.float("HTTP_HEADER_TIMEOUT", default=10.0)
# Where seed_demo keeps the demo users' password, generated on the first seed (gitignored).
DEMO_PASSWORD_FILE = env("DEMO_PASSWORD_FILE", default=str(BASE_DIR / ".demo-password"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "realtime": {
            "handlers": ["console"],
            "level": REALTIME["LOG_LEVEL"],
            "propagate": False,
        },
        "inventory": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
