"""The seam between the domain and its delivery: events recorded in the transaction, handed on at commit.

A service says what happened with `record` (logged: a row of the inventory's event log with the seq
the inventory's lock handed out, written with the change) or `announce` (not logged, no seq: a
client that misses it learns the same later, e.g. progress figures come again with the next scan).
Either way the event holds domain facts, plain JSON values, never a message of some protocol; the
subscribers (realtime's publisher, registered in its AppConfig.ready) get it only once the
transaction commits, so nothing is announced that rolls back. The domain knows no subscriber.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from . import formats, writes
from .models import Inventory, InventoryEvent

# Logged kinds (the event log's types).
SCAN_ADDED = InventoryEvent.Type.SCAN_ADDED.value
SCAN_REMOVED = InventoryEvent.Type.SCAN_REMOVED.value
INVENTORY_COMPLETED = InventoryEvent.Type.INVENTORY_COMPLETED.value
# Announced, not logged: the room's figures changed without a scan (an expected list imported or cleared).
PROGRESS_CHANGED = "progress_changed"


@dataclass(frozen=True)
class Event:
    """One domain event: its kind, its facts, and its seq in the inventory's log (None: not logged)."""

    inventory: Inventory = field(repr=False)
    kind: str
    facts: dict[str, Any]
    seq: int | None = None


Subscriber = Callable[[Event], None]
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """Hand every committed event to `subscriber` (once, however often it subscribes)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def record(inventory: Inventory, kind: str, *changes: writes.Statement, **facts: Any) -> tuple | None:
    """Log the event with the change's rows, in one write; hand it to the subscribers after commit.

    `inventory` is the one `locks.take` returned: its `last_seq` is the event's seq, handed out under
    the lock, so the log has no gap. Returns the row the last change returns, if any.
    """
    row = writes.run(writes.insert(_row(inventory, kind, facts)), *changes)
    _on_commit(Event(inventory, kind, facts, seq=inventory.last_seq))
    return row


def announce(inventory: Inventory, kind: str, **facts: Any) -> None:
    """Hand an event that is not logged to the subscribers after commit."""
    _on_commit(Event(inventory, kind, facts))


def _row(inventory: Inventory, kind: str, facts: dict[str, Any]) -> InventoryEvent:
    return InventoryEvent(inventory=inventory, seq=inventory.last_seq, type=kind, facts=facts)


def _on_commit(event: Event) -> None:
    transaction.on_commit(lambda: _deliver(event))


def _deliver(event: Event) -> None:
    for subscriber in list(_subscribers):
        subscriber(event)


# The facts of each kind, from the domain's objects (also used to answer a retry with the stored scan).


def scan_facts(scan) -> dict[str, Any]:
    """A scan as the log keeps it: id, code, who scanned it and when, and its match (None: no list)."""
    return {
        "id": str(scan.uid),
        "code": scan.code,
        "scanned_by_id": str(scan.scanned_by_id) if scan.scanned_by_id else None,
        "scanned_by_name": scan.scanned_by_name,
        "scanned_at": formats.timestamp(scan.scanned_at),
        "match": getattr(scan, "match", "") or None,
    }


def scan_added_facts(scan, *, progress: dict[str, int] | None = None) -> dict[str, Any]:
    """A scan counted by its scanner, with the room's figures after it; `at`: when."""
    return {
        "scan": scan_facts(scan),
        "user_id": str(scan.scanned_by_id) if scan.scanned_by_id else None,
        "user_name": scan.scanned_by_name,
        "progress": progress,
        "at": formats.timestamp(),
    }


def scan_removed_facts(scan, *, user, progress: dict[str, int] | None = None) -> dict[str, Any]:
    """A scan removed by `user`, with the room's figures after it; `at`: when."""
    return {
        "scan": scan_facts(scan),
        "user_id": formats.user_id(user),
        "user_name": formats.display_name(user),
        "progress": progress,
        "at": formats.timestamp(),
    }


def inventory_completed_facts(
    inventory: Inventory, *, summary: dict[str, int] | None = None
) -> dict[str, Any]:
    """Who completed the inventory and when, with its final figures."""
    return {
        "completed_by_id": str(inventory.completed_by_id) if inventory.completed_by_id else None,
        "completed_by_name": inventory.completed_by_name,
        "completed_at": formats.timestamp(inventory.completed_at),
        "summary": summary,
    }


def progress_changed_facts(figures: dict[str, int], *, cause: str) -> dict[str, Any]:
    """The room's figures after a change that is not a scan, and its cause."""
    return {"progress": figures, "cause": cause, "at": formats.timestamp()}
