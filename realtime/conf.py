"""The realtime settings (settings.REALTIME), read through one object with the seed's defaults."""

from django.conf import settings

DEFAULTS = {
    "WEBSOCKET_PATH": "/ws/inventory",
    "MAX_CONNECTIONS_PER_ROOM": 50,
    "RATE_LIMIT_MAX_MESSAGES": 100,
    "HEARTBEAT_INTERVAL_MS": 30000,
    # Frames larger than this close the connection with 1009.
    "MAX_FRAME_BYTES": 64 * 1024,
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


realtime_settings = RealtimeSettings()
