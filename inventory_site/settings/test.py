"""The test suite: the embedded default unless DATABASE_URL / REDIS_URL name real services."""

import os

os.environ.setdefault("REDIS_PREFIX", "inventory-test")

from .base import *  # noqa: E402,F403
from .base import BASE_DIR, DATABASES  # noqa: E402

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A file, not memory, so that the daphne processes the end-to-end tests start see the same data.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"scan_write": "10000/min", "login": "1000/min"}  # noqa: F405
