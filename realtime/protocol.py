"""Protocol v1's builders: every message that reaches a client is built here.

The shapes are declared once in realtime.wire (Django-free); the builders fill them from the
domain. Extensions to protocol v1 are additive (a new key, or a new message type) and documented
in docs/protocol.md.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from inventory import events, selectors

# The domain's formats, used here and by the rest of realtime through this module.
from inventory.formats import display_name, room_fields, timestamp, timestamp_from_epoch  # noqa: F401
from inventory.reconciliation.selectors import FIGURES

# The declaration of protocol v1 (types, close codes, message shapes), re-exported for realtime.
from .wire import (  # noqa: F401
    CLIENT_TYPES,
    CLOSE_COMPLETED,
    CLOSE_FORBIDDEN,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_ROOM_FULL,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_MANY,
    CLOSE_UNAUTHENTICATED,
    CLOSE_UNAVAILABLE,
    ERROR,
    INVENTORY_COMPLETED,
    PING,
    PONG,
    PRESENCE,
    PROGRESS,
    RESUME,
    SCAN_ADDED,
    SCAN_REMOVED,
    SERVER_TYPES,
    SESSION_TERMINATED,
    SNAPSHOT,
    USER_JOINED,
    USER_LEFT,
    ErrorMessage,
    Figures,
    InventoryCompletedMessage,
    PongMessage,
    PresenceMessage,
    PresenceUser,
    ProgressMessage,
    ScanAddedMessage,
    ScanData,
    ScanRemovedMessage,
    ServerMessage,
    SessionTerminatedMessage,
    SnapshotMessage,
    SnapshotScan,
    UserJoinedMessage,
    UserLeftMessage,
)


def _in_room_language(text, **values) -> str:
    """Texts broadcast to a whole room are in the site's language (protocol v1's Spanish texts)."""
    with translation.override(settings.LANGUAGE_CODE):
        return _(text) % values


def user_fields(user, name: str | None = None) -> dict[str, Any]:
    return {"userId": str(user.pk) if user else None, "userName": name or display_name(user)}


def scan_data(scan) -> SnapshotScan:
    """The scan shape REST shares (inventory.selectors.scan_data): scanData's keys and `match`."""
    return selectors.scan_data(scan)


def _scan_data(scan: dict[str, Any]) -> ScanData:
    """A message's `scanData`: the shared scan shape without `match`, which the message carries beside it."""
    return selectors.scan_data_of(scan, match=False)


def scan_added(scan, *, seq: int | None = None, progress: dict[str, int] | None = None) -> ScanAddedMessage:
    return _scan_added(scan.inventory, events.scan_added_facts(scan, progress=progress), seq)


def scan_removed(
    scan, *, user, seq: int | None = None, progress: dict[str, int] | None = None
) -> ScanRemovedMessage:
    return _scan_removed(scan.inventory, events.scan_removed_facts(scan, user=user, progress=progress), seq)


def _scan_added(inventory, facts: dict[str, Any], seq: int | None) -> ScanAddedMessage:
    message = _scan_message(SCAN_ADDED, inventory, facts, seq)
    # Extension (reconciliation): how the scan compares with the expected list, and the room's figures.
    message["data"]["match"] = facts["scan"]["match"]
    if facts.get("progress") is not None:
        message["data"]["progress"] = _figures(facts["progress"])
    return message


def _scan_removed(inventory, facts: dict[str, Any], seq: int | None) -> ScanRemovedMessage:
    message = _scan_message(SCAN_REMOVED, inventory, facts, seq)
    if facts.get("progress") is not None:
        message["data"]["progress"] = _figures(facts["progress"])
    return message


def _figures(figures: dict[str, int]) -> Figures:
    """The figures in their order: a log on PostgreSQL (jsonb) gives its keys back in another."""
    return {**{name: figures[name] for name in FIGURES if name in figures}, **figures}


def _scan_message(kind, inventory, facts, seq):
    data = {
        **room_fields(inventory),
        "userId": facts["user_id"],
        "userName": facts["user_name"],
        "scanData": _scan_data(facts["scan"]),
        "timestamp": facts["at"],
    }
    if seq is not None:
        data["seq"] = seq
    return {"type": kind, "data": data}


def inventory_completed(
    inventory, *, seq: int | None = None, summary: dict[str, int] | None = None
) -> InventoryCompletedMessage:
    return _inventory_completed(inventory, events.inventory_completed_facts(inventory, summary=summary), seq)


def _inventory_completed(inventory, facts: dict[str, Any], seq: int | None) -> InventoryCompletedMessage:
    name = facts["completed_by_name"]
    data = {
        **room_fields(inventory),
        "completedBy": name,
        "inventoryId": str(inventory.pk),
        "message": _in_room_language(
            gettext_noop("El inventario ha sido completado por %(name)s."), name=name
        ),
        "timestamp": facts["completed_at"],
    }
    if seq is not None:
        data["seq"] = seq
    if facts.get("summary") is not None:
        data["summary"] = _figures(facts["summary"])  # extension (reconciliation): the final figures
    return {"type": INVENTORY_COMPLETED, "data": data}


def session_terminated(inventory) -> SessionTerminatedMessage:
    name = inventory.completed_by_name
    return {
        "type": SESSION_TERMINATED,
        "data": {
            **room_fields(inventory),
            "completedBy": name,
            "message": _in_room_language(
                gettext_noop("Tu sesión ha sido terminada porque %(name)s completó el inventario."), name=name
            ),
            "timestamp": timestamp(),
        },
    }


def user_joined(inventory, user) -> UserJoinedMessage:
    return {
        "type": USER_JOINED,
        "data": {**room_fields(inventory), **user_fields(user), "timestamp": timestamp()},
    }


def user_left(inventory, *, user_id: str, user_name: str) -> UserLeftMessage:
    """Extension: the user's last connection in the room closed, or expired with its instance."""
    return {
        "type": USER_LEFT,
        "data": {
            **room_fields(inventory),
            "userId": user_id,
            "userName": user_name,
            "timestamp": timestamp(),
        },
    }


def presence(inventory, users: list[PresenceUser]) -> PresenceMessage:
    return {
        "type": PRESENCE,
        "data": {**room_fields(inventory), "users": users, "timestamp": timestamp()},
    }


# What the server sends back of a client's own values (the ping's timestamp, the code and id
# of a refused scan): short text or a finite number, so no answer can be made invalid JSON,
# invalid UTF-8 or oversized by what a client sent.
ECHO_MAX_CHARS = 64


def echoable(value: Any) -> bool:
    """Whether a client's value may go back as it came: text of up to 64 characters or a finite number."""
    if isinstance(value, str):
        return len(value) <= ECHO_MAX_CHARS and not any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def pong(client_timestamp: Any = None) -> PongMessage:
    """Answer a ping; the client's timestamp (already checked with `echoable`) or the server time."""
    now = timestamp()
    echoed = client_timestamp if client_timestamp not in (None, "") else now
    return {"type": PONG, "data": {"timestamp": echoed, "serverTime": now}}


def error(message: str, *, code: str, **extra: Any) -> ErrorMessage:
    """Protocol v1's `error`, plus a machine-readable `code` and optional details."""
    return {
        "type": ERROR,
        "data": {"message": str(message), "code": code, **extra, "timestamp": timestamp()},
    }


def snapshot(inventory, scans, *, seq: int) -> SnapshotMessage:
    return {
        "type": SNAPSHOT,
        "data": {
            **room_fields(inventory),
            "status": inventory.status,
            "seq": seq,
            "scans": [scan_data(scan) for scan in scans],
            "timestamp": timestamp(),
        },
    }


def progress_update(inventory, figures: dict[str, int], *, cause: str) -> ProgressMessage:
    """Extension (reconciliation): the room's figures changed without a scan, e.g. a new expected list.

    Not sequenced: a client that misses it gets the figures again with the next scan.
    """
    return _progress_update(inventory, events.progress_changed_facts(figures, cause=cause), None)


def _progress_update(inventory, facts: dict[str, Any], seq: None) -> ProgressMessage:
    return {
        "type": PROGRESS,
        "data": {
            **room_fields(inventory),
            "progress": _figures(facts["progress"]),
            "cause": facts["cause"],
            "timestamp": facts["at"],
        },
    }


# Each domain event's message, from its facts (inventory.events).
_RENDERERS = {
    events.SCAN_ADDED: _scan_added,
    events.SCAN_REMOVED: _scan_removed,
    events.INVENTORY_COMPLETED: _inventory_completed,
    events.PROGRESS_CHANGED: _progress_update,
}


def event_message(event, inventory) -> ServerMessage:
    """The message of a domain event (`inventory.events.Event` or a row of the log) in `inventory`'s room.

    The one rendering of an event: the publisher sends it live, and a replay of the log (a resume, a
    gap fill) sends the very same text.
    """
    return _RENDERERS[event.kind](inventory, event.facts, event.seq)
