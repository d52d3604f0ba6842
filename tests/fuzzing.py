"""The fuzz campaign's sizes and its measured counts.

`FUZZ_PROFILE` picks the sizes: `ci` (the default, in every test run: a few hundred steps and
calls) or `long` (`make fuzz`: 10,000+ socket steps, 5,000+ API calls). Each fuzz test writes what
it really ran (steps, frames, calls, failures) to `test-results/fuzz/<name>-<database>.json`;
`scripts/fuzz_summary.py` prints them.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

PROFILE = os.environ.get("FUZZ_PROFILE", "ci")
SIZES = {
    # room_*: the socket state machine (examples x steps each); api_*: schemathesis, per operation
    # (stateless) and through the schema's links (examples x steps each).
    "ci": {"room_examples": 8, "room_steps": 40, "api_examples": 10, "api_runs": 12, "api_steps": 10},
    "long": {"room_examples": 400, "room_steps": 50, "api_examples": 160, "api_runs": 150, "api_steps": 20},
}
if PROFILE not in SIZES:
    raise RuntimeError(f"FUZZ_PROFILE={PROFILE!r}: expected one of {', '.join(SIZES)}")
SIZE = SIZES[PROFILE]

# The CI profile replays the same examples every run; the long campaign explores new ones.
FUZZ_SETTINGS = hypothesis_settings(
    deadline=None,
    derandomize=PROFILE == "ci",
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)

RESULTS = Path(settings.BASE_DIR) / "test-results" / "fuzz"


def configuration() -> str:
    """`sqlite` or `postgres`, plus `-redis` when REDIS_URL is set: the run's services."""
    database = "postgres" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"
    return database + ("-redis" if settings.REDIS_URL else "")


class Tally:
    """Counts of one fuzz test, written to its JSON file when the test ends (passed or failed)."""

    def __init__(self, name: str):
        self.name = name
        self.counts: Counter = Counter()
        self.seconds: Counter = Counter()  # where the time went, by step kind
        self.found: list[str] = []  # the failures, as first seen
        self.started = time.time()

    def write(self, outcome: str, **extra) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}-{configuration()}.json"
        record = {
            "name": self.name,
            "profile": PROFILE,
            "configuration": configuration(),
            "outcome": outcome,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "counts": dict(self.counts),
            "seconds by kind": {kind: round(seconds, 1) for kind, seconds in self.seconds.most_common()},
            **extra,
        }
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n")
        return path
