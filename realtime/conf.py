"""The realtime settings (settings.REALTIME), read through one object with the seed's defaults."""

from django.conf import settings

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
}


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
