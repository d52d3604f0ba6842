"""The live page's view of this transport (inventory.live): the socket's address and heartbeat."""

from __future__ import annotations

from typing import Any

from inventory import live

from .conf import realtime_settings


class RealtimeTransport:
    def page_config(self) -> dict[str, Any]:
        return {
            "websocketPath": "/" + realtime_settings.WEBSOCKET_PATH.strip("/"),
            "heartbeatMs": realtime_settings.HEARTBEAT_INTERVAL_MS,
        }


def connect() -> None:
    live.register(RealtimeTransport())
