"""The publisher: each committed domain event goes live as the very text a replay of the log sends."""

import json

import pytest
from channels.db import database_sync_to_async

from inventory import events, services
from inventory.access import Room
from inventory.models import Inventory, InventoryEvent
from inventory.reconciliation import services as reconciliation
from realtime import broadcast, protocol, publisher
from realtime.wire import PRESENCE_CHATTER, check_server_message
from tests.inventory.reconciliation_helpers import csv_bytes

from .helpers import joined


@pytest.fixture
def published(monkeypatch):
    """What the publisher hands to the room: (messages, close) per event."""
    sent = []
    monkeypatch.setattr(
        broadcast, "publish", lambda inventory_id, *messages, close=False: sent.append((messages, close))
    )
    return sent


def room_state(inventory) -> Inventory:
    """The inventory as a socket holds it (read when it joined), not the writer's copy."""
    return Inventory.objects.select_related("agency").get(pk=inventory.pk)


@pytest.mark.django_db
def test_every_logged_kind_replays_as_the_text_published_live(
    alfa, ana, luis, published, django_capture_on_commit_callbacks
):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    with django_capture_on_commit_callbacks(execute=True):
        reconciliation.expected_import_file(
            inventory=inventory, upload=csv_bytes([["VIN"], ["EXP-1"]]), filename="libros.csv"
        )
        services.scan_record(inventory=inventory, user=ana, code="exp-1")
        services.scan_record(inventory=inventory, user=luis, code="OTHER-1")
        services.scan_remove(inventory=inventory, user=ana, code="OTHER-1")
        services.inventory_complete(inventory=inventory, user=luis)
    progress, *logged = published
    assert [messages[0]["type"] for messages, _close in logged] == [
        "scan_added",
        "scan_added",
        "scan_removed",
        "inventory_completed",
    ]
    rows = InventoryEvent.objects.filter(inventory=inventory).order_by("seq")
    replayed = [broadcast.encode(protocol.event_message(row, room_state(inventory))) for row in rows]
    assert replayed == [broadcast.encode(messages[0]) for messages, _close in logged]
    # The match and the figures made it through the facts.
    assert [json.loads(text)["data"].get("match") for text in replayed[:2]] == ["expected", "unexpected"]
    assert json.loads(replayed[-1])["data"]["summary"]["counted"] == 1
    # Only the completion closes the room, after telling every session why.
    assert [close for _messages, close in logged] == [False, False, False, True]
    assert [message["type"] for message in logged[-1][0]] == ["inventory_completed", "session_terminated"]
    # A progress change is published, not logged: no seq.
    (message,), close = progress
    assert (message["type"], message["data"]["cause"], close) == ("progress", "expected_imported", False)
    assert "seq" not in message["data"]


@pytest.mark.django_db
def test_the_builders_and_the_publisher_render_the_same_message(alfa, ana):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    scan = services.scan_record(inventory=inventory, user=ana, code="VIN-1").scan
    row = InventoryEvent.objects.get(inventory=inventory)
    event = events.Event(inventory, row.kind, row.facts, seq=row.seq)
    (message,), close = publisher.messages_of(event)
    built = protocol.scan_added(scan, seq=1, progress=row.facts["progress"])
    built["data"]["timestamp"] = message["data"]["timestamp"]  # built now; the event was recorded before
    assert (message, close) == (built, False)


async def next_text(client) -> str:
    """The next message other than presence chatter, as the text the server sent."""
    while True:
        text = await client.ws.receive_from(timeout=3)
        if check_server_message(json.loads(text))["type"] not in PRESENCE_CHATTER:
            return text


@pytest.mark.django_db(transaction=True)
async def test_a_socket_that_resumes_gets_the_very_text_the_room_got_live(ana, luis, alfa):
    inventory = await database_sync_to_async(services.inventory_get_or_open)(room=Room(alfa, 10, 2025))
    async with joined(ana) as watcher:
        await database_sync_to_async(services.scan_record)(inventory=inventory, user=luis, code="A1")
        await database_sync_to_async(services.scan_record)(inventory=inventory, user=luis, code="A2")
        await database_sync_to_async(services.scan_remove)(inventory=inventory, user=ana, code="A1")
        live = [await next_text(watcher) for _ in range(3)]
    async with joined(ana, query="since=0") as client:
        replayed = [await next_text(client) for _ in range(3)]
    assert [json.loads(text)["data"]["seq"] for text in live] == [1, 2, 3]
    assert replayed == live
