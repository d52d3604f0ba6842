"""The live page's view of this transport (inventory.live): the socket's address and a scan's state."""

from __future__ import annotations

from typing import Any

from inventory import live

from . import protocol
from .conf import realtime_settings


class RealtimeTransport:
    def page_config(self) -> dict[str, Any]:
        return {
            "websocketPath": "/" + realtime_settings.WEBSOCKET_PATH.strip("/"),
            "heartbeatMs": realtime_settings.HEARTBEAT_INTERVAL_MS,
        }

    def scan_state(self, scan) -> dict[str, Any]:
        """The protocol's scanData, who scanned it (to count "mine") and its match, as `scan_added` has it."""
        return {
            **protocol.scan_data(scan),
            "userId": str(scan.scanned_by_id) if scan.scanned_by_id else None,
            "match": protocol.scan_match(scan),
        }


def connect() -> None:
    live.register(RealtimeTransport())
