"""What the live page needs from the transport that serves its room, which registers itself at startup.

The page (inventory.views) opens a socket to the live room: where the socket is and how often it
beats belong to the transport (realtime registers them in its AppConfig.ready), so the domain does
not import it. The scans it starts from read as everywhere (inventory.selectors.scan_data).
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


class LiveTransport(Protocol):
    def page_config(self) -> dict[str, Any]:
        """What the page's script needs to reach the room (e.g. the socket's path and heartbeat)."""


_transport: LiveTransport | None = None


def register(transport: LiveTransport) -> None:
    global _transport
    _transport = transport


def transport() -> LiveTransport:
    if _transport is None:
        raise ImproperlyConfigured("No live transport registered: is `realtime` in INSTALLED_APPS?")
    return _transport
