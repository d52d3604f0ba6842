"""Publishes the domain's committed events to their live rooms (subscribed to inventory.events).

Each event becomes its protocol message here (`protocol.event_message`, the rendering a replay of
the log uses too) and goes through `broadcast`, which encodes it once for every socket of the room.
"""

from __future__ import annotations

from typing import Any

from inventory import events

from . import broadcast, protocol


def messages_of(event: events.Event) -> tuple[list[dict[str, Any]], bool]:
    """The messages that announce the event, in order, and whether the room's sockets close after them."""
    messages = [protocol.event_message(event, event.inventory)]
    if event.kind == events.INVENTORY_COMPLETED:
        # Every open session is told why it ends, then closed.
        messages.append(protocol.session_terminated(event.inventory))
        return messages, True
    return messages, False


def publish(event: events.Event) -> None:
    """Send a committed event to everyone in its inventory's room."""
    messages, close = messages_of(event)
    broadcast.publish(event.inventory.pk, *messages, close=close)


def connect() -> None:
    events.subscribe(publish)
