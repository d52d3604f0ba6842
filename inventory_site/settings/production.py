"""Production: secrets only from the environment, HTTPS behind a proxy."""

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, env

# Never the debug pages in production, whatever DEBUG says (`DEBUG=websocket:*` still turns on
# the realtime debug log, in base).
DEBUG = False

# Django's own test of a strong key (its security check W009), made fatal here, plus the
# placeholders of .env.example and of the development settings.
SECRET_KEY = env("SECRET_KEY", default="")
if (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith((SECRET_KEY_INSECURE_PREFIX, "insecure"))
    or "change-me" in SECRET_KEY
):
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set in the environment to a random value of {SECRET_KEY_MIN_LENGTH} "
        "characters or more, e.g. the output of: python -c "
        "'from django.core.management.utils import get_random_secret_key as k; print(k())'"
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Only the load balancer's plain liveness check answers over HTTP; /health/detailed is redirected.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Behind one proxy (the Procfile's platform router): the client is the address it reports.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=1)
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "NUM_PROXIES": TRUSTED_PROXIES,
    # No browsable API in production: JSON only (the API's docs are at /api/docs/).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
