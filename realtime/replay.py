"""What a socket missed, from the event log: a backlog on join or resume, a snapshot, a gap fill.

Stored events are rendered as a live publish renders them (`protocol.event_message`), so a
client cannot tell a replayed event from a relayed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from inventory import periods, selectors

from . import protocol
from .conf import realtime_settings
from .db import hop


@dataclass(frozen=True)
class Backlog:
    """The messages a client that stopped at some seq needs, in order, and the seq it then stands at."""

    messages: list[dict[str, Any]]
    last_seq: int


def since_in_query(scope) -> int | None:
    """The seq a reconnecting client stands at (`?since=`), None when it does not say."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    value = (query.get("since") or [None])[0]
    return periods.ascii_int(value) if value is not None else None


@hop
def inventory_state(inventory_id):
    from inventory.models import Inventory

    return Inventory.objects.select_related("agency").get(pk=inventory_id)


@hop
def events_after(inventory, seq: int, until: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    """The logged events after `seq` (up to `until`), as (seq, message), in order."""
    events = selectors.events_since(inventory, seq)
    if until is not None:
        events = events.filter(seq__lte=until)
    return [(event.seq, protocol.event_message(event, inventory)) for event in events]


@hop
def snapshot(inventory_id) -> dict[str, Any]:
    inventory = inventory_state.func(inventory_id)
    return protocol.snapshot(inventory, list(selectors.scans_of(inventory)), seq=inventory.last_seq)


async def backlog(inventory, since: int) -> Backlog:
    """What a client that stopped at `since` missed.

    Every event after `since`, in order; or one snapshot when the log no longer holds them all,
    when the backlog is longer than REPLAY_MAX_EVENTS (it costs more than the state it leads to),
    or when `since` is beyond this inventory's last event (the client's state is not ours).
    """
    current = await inventory_state(inventory.pk)
    replay_max = realtime_settings.REPLAY_MAX_EVENTS
    if since <= current.last_seq and (replay_max <= 0 or current.last_seq - since <= replay_max):
        events = await events_after(inventory, since, until=current.last_seq)
        if [seq for seq, _ in events] == list(range(since + 1, current.last_seq + 1)):
            return Backlog([message for _, message in events], current.last_seq)
    state = await snapshot(inventory.pk)
    return Backlog([state], state["data"]["seq"])
