"""The realtime settings: defined once here, set in `settings.REALTIME`, read through `realtime_settings`.

As Django REST framework does: one namespaced dict of defaults (protocol v1's), one object that reads
`settings.REALTIME` over them. Each key can be set from the environment as `REALTIME_<KEY>`
(`from_environment`, called by the settings module); the names protocol v1 documented
(`WEBSOCKET_PATH`, `WEBSOCKET_HEARTBEAT_INTERVAL`, `DEBUG=websocket:*`...) are a contract with
deployments and keep working as aliases. README's settings table lists them all (a test checks).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ENV_PREFIX = "REALTIME_"

DEFAULTS = {
    "WEBSOCKET_PATH": "/ws/inventory",
    "MAX_CONNECTIONS_PER_ROOM": 50,
    "RATE_LIMIT_MAX_MESSAGES": 100,
    "HEARTBEAT_INTERVAL_MS": 30000,
    # A dead instance's last figures are kept this long, marked as gone (metrics, room_metrics).
    "METRICS_GONE_RETENTION_SECONDS": 3600,
    # One user's sockets in one room, counted across instances (0: no limit).
    "MAX_CONNECTIONS_PER_USER": 5,
    # Connection attempts per user per minute, across instances (0: no limit).
    "CONNECT_RATE_PER_USER": 60,
    # Sockets joining at once in one process (authentication, room, presence, relay, log); the
    # next wait for a place up to JOIN_WAIT_MS, then are refused with `unavailable`, a
    # `retryAfter` and 4503 (0: no bound).
    "MAX_JOINS_IN_PROGRESS": 32,
    "JOIN_WAIT_MS": 2000,
    # A user whose last socket closes is announced as gone only if not back within this time.
    "PRESENCE_GRACE_MS": 5000,
    # A resume further behind than this gets the snapshot instead of the events.
    "REPLAY_MAX_EVENTS": 500,
    # Client messages larger than this are refused with an `error` and closed with 1009.
    "MAX_FRAME_BYTES": 64 * 1024,
    # What daphne accepts and sends per message: above MAX_FRAME_BYTES so that the consumer, not
    # the transport, refuses a big client frame (with its error and 1009), and large enough for
    # the server's own big messages (a snapshot of ~6,000 scans fits in 1 MiB).
    "TRANSPORT_MAX_BYTES": 1024 * 1024,
    # Seconds a stopping instance (SIGTERM) waits for its requests and socket writes in flight to
    # finish, after it stopped listening and told every socket to reconnect (1012).
    "SHUTDOWN_TIMEOUT": 10,
    # The level of the `realtime` loggers (DEBUG, INFO, WARNING, ERROR).
    "LOG_LEVEL": "INFO",
}

# Key -> the environment names it was known by before `REALTIME_<KEY>` (protocol v1's, README's).
# `REALTIME_<KEY>` wins when both are set.
ENV_ALIASES = {
    "WEBSOCKET_PATH": ("WEBSOCKET_PATH",),
    "MAX_CONNECTIONS_PER_ROOM": ("WEBSOCKET_MAX_CONNECTIONS_PER_ROOM",),
    "RATE_LIMIT_MAX_MESSAGES": ("WEBSOCKET_RATE_LIMIT_MAX_MESSAGES",),
    "HEARTBEAT_INTERVAL_MS": ("WEBSOCKET_HEARTBEAT_INTERVAL",),
    "MAX_CONNECTIONS_PER_USER": ("WEBSOCKET_MAX_CONNECTIONS_PER_USER",),
    "CONNECT_RATE_PER_USER": ("WEBSOCKET_CONNECT_RATE_PER_USER",),
    "PRESENCE_GRACE_MS": ("WEBSOCKET_PRESENCE_GRACE_MS",),
    "REPLAY_MAX_EVENTS": ("WEBSOCKET_REPLAY_MAX_EVENTS",),
    "METRICS_GONE_RETENTION_SECONDS": ("METRICS_GONE_RETENTION_SECONDS",),
}

# Protocol v1's debug switch: `DEBUG=websocket:*` (any value naming `websocket:`) sets LOG_LEVEL to DEBUG.
DEBUG_SWITCH = "websocket:"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_name(key: str) -> str:
    return ENV_PREFIX + key


def from_environment(env) -> dict:
    """`settings.REALTIME` from the environment (a django-environ `Env`): every key, defaults filled in."""
    values = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        for name in (env_name(key), *ENV_ALIASES.get(key, ())):
            if name in env.ENVIRON:
                values[key] = env.int(name) if isinstance(default, int) else env.str(name)
                break
        else:
            if key == "LOG_LEVEL" and DEBUG_SWITCH in env.str("DEBUG", default=""):
                values[key] = "DEBUG"
    values["LOG_LEVEL"] = values["LOG_LEVEL"].upper()
    if values["LOG_LEVEL"] not in LOG_LEVELS:
        raise ImproperlyConfigured(
            f"{env_name('LOG_LEVEL')}={values['LOG_LEVEL']!r}: expected one of {', '.join(LOG_LEVELS)}"
        )
    return values


class RealtimeSettings:
    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(name)
        return getattr(settings, "REALTIME", {}).get(name, DEFAULTS[name])

    @property
    def heartbeat_seconds(self) -> float:
        return self.HEARTBEAT_INTERVAL_MS / 1000

    @property
    def presence_ttl_seconds(self) -> float:
        """A connection not refreshed within two heartbeats is gone."""
        return 2 * self.heartbeat_seconds

    @property
    def presence_grace_seconds(self) -> float:
        return max(0, self.PRESENCE_GRACE_MS) / 1000


realtime_settings = RealtimeSettings()
