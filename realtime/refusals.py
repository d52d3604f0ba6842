"""Why a socket is turned away or closed: the `error` it is told first, then its close code.

Every refusal of protocol v1 is one `Refusal` (the rate limit's, a revocation's, a full room's,
a completed inventory's, a service that is down); a join raises `Refused` with it, and the consumer
sends it and closes, whatever step of the join it came from. Messages are translated when built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from inventory.exceptions import InventoryCompleted, database_down_message

from . import protocol
from .conf import realtime_settings
from .presence import USER_LIMIT

# The close code for a room that cannot be opened, by the HTTP status of the domain's error.
CLOSE_FOR_STATUS = {
    400: protocol.CLOSE_NOT_FOUND,
    403: protocol.CLOSE_FORBIDDEN,
    404: protocol.CLOSE_NOT_FOUND,
}


@dataclass(frozen=True)
class Refusal:
    """The `error` to send (message, code, details), then the close code."""

    close_code: int
    message: str
    code: str
    details: dict[str, Any] = field(default_factory=dict)


class Refused(Exception):
    """A join turned away: the socket is told `refusal` and closed; `grace`: whether the room may
    wait a grace period before hearing that this user left (not when their access was taken)."""

    def __init__(self, refusal: Refusal, *, grace: bool = True):
        super().__init__(refusal.code)
        self.refusal = refusal
        self.grace = grace


def unauthenticated() -> Refusal:
    message = _("Autenticación requerida: inicia sesión o conecta con un token.")
    return Refusal(protocol.CLOSE_UNAUTHENTICATED, message, "unauthenticated")


def room_refused(exc) -> Refusal:
    """The room could not be opened (an `InventoryError`: no such agency, no access, a bad month)."""
    return Refusal(CLOSE_FOR_STATUS.get(exc.status, protocol.CLOSE_NOT_FOUND), exc.message, exc.code)


def completed(inventory) -> Refusal:
    return Refusal(protocol.CLOSE_COMPLETED, InventoryCompleted(inventory).message, "inventory_completed")


def place_refused(refused: str) -> Refusal:
    """The room (or the user's own sockets in it) is at its limit."""
    if refused == USER_LIMIT:
        message = _("Ya tienes %(max)s conexiones abiertas en esta sala: cierra alguna para abrir otra.")
        return Refusal(
            protocol.CLOSE_TOO_MANY,
            message % {"max": realtime_settings.MAX_CONNECTIONS_PER_USER},
            "user_connection_limit",
        )
    message = _("La sala está llena: máximo %(max)s conexiones.")
    return Refusal(
        protocol.CLOSE_ROOM_FULL, message % {"max": realtime_settings.MAX_CONNECTIONS_PER_ROOM}, "room_full"
    )


def live_down() -> Refusal:
    message = _("Las actualizaciones en vivo no están disponibles ahora; reintenta en unos segundos.")
    return Refusal(protocol.CLOSE_UNAVAILABLE, message, "unavailable")


def database_down() -> Refusal:
    return Refusal(protocol.CLOSE_UNAVAILABLE, database_down_message(), "database_unavailable")


def too_many_messages(**details) -> Refusal:
    return Refusal(protocol.CLOSE_TOO_MANY, "Rate limit exceeded", "rate_limited", details)
