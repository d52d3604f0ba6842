"""What the live page needs from the transport that serves its room, which registers itself at startup.

The page (inventory.views) opens a socket to the live room and starts from the scans it shows: where
the socket is, how often it beats, and how a scan reads in its messages belong to the transport
(realtime registers them in its AppConfig.ready), so the domain does not import it.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


class LiveTransport(Protocol):
    def page_config(self) -> dict[str, Any]:
        """What the page's script needs to reach the room (e.g. the socket's path and heartbeat)."""

    def scan_state(self, scan) -> dict[str, Any]:
        """A scan as the room's messages carry it, for the page's first state."""


_transport: LiveTransport | None = None


def register(transport: LiveTransport) -> None:
    global _transport
    _transport = transport


def transport() -> LiveTransport:
    if _transport is None:
        raise ImproperlyConfigured("No live transport registered: is `realtime` in INSTALLED_APPS?")
    return _transport
