"""The one place that sends room events to the live room (through `realtime.fanout`).

Each event is encoded to JSON once, here; every socket of the room relays the ready text as it
is, so the cost of encoding is paid once per event, not once per recipient.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync

from . import clock
from .fanout import get_fanout, room_stream

logger = logging.getLogger("realtime.broadcast")

# The event types a room's sockets relay.
ROOM_EVENT = "room.event"
# Sent after the final events of a completed inventory: consumers close their sockets.
ROOM_CLOSE = "room.close"


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def room_event(message: dict[str, Any]) -> dict[str, Any]:
    """Wrap one protocol message as a layer event carrying its ready JSON text."""
    return {
        "type": ROOM_EVENT,
        "text": encode(message),
        "kind": message["type"],
        "seq": message["data"].get("seq"),
        "sent": clock.now(),
    }


async def apublish(inventory_id: int, *messages: dict[str, Any], close: bool = False) -> None:
    """Send messages, in order, to everyone in the inventory's room."""
    events = [room_event(message) for message in messages]
    if close:
        events.append({"type": ROOM_CLOSE})
    stream = room_stream(inventory_id)
    try:
        await get_fanout().publish(stream, events)
    except Exception as exc:
        # The change is committed; live delivery failed, and clients catch up by resuming from seq.
        from . import metrics

        metrics.local.broadcast_failures += 1
        logger.error("Could not broadcast %s to %s: %r", [m["type"] for m in messages], stream, exc)


def publish(inventory_id: int, *messages: dict[str, Any], close: bool = False) -> None:
    async_to_sync(apublish)(inventory_id, *messages, close=close)
