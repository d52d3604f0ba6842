"""The test suite: the embedded default unless DATABASE_URL / REDIS_URL name real services."""

import os

# Every pytest process gets its own Redis prefix and test database, so that runs side by side
# (and the daphne processes each run starts) never share state.
_RUN = os.environ.setdefault("TEST_RUN_ID", str(os.getpid()))
os.environ.setdefault("REDIS_PREFIX", f"inventory-test-{_RUN}")

from .base import *  # noqa: E402,F403
from .base import BASE_DIR, DATABASES  # noqa: E402

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that the daphne processes the end-to-end tests start see the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test_db_{_RUN}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_RUN}"}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"scan_write": "10000/min", "login": "1000/min"}  # noqa: F405
