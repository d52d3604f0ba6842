"""The WebSocket protocol against the real ASGI application, in-process."""

import asyncio
import json
import time
import uuid

import pytest
from channels.db import database_sync_to_async

from inventory import services
from inventory.access import Room
from inventory.models import Inventory, Scan
from realtime import protocol
from realtime.conf import realtime_settings

from .helpers import connect_raw, joined, room_path, token_of

pytestmark = [pytest.mark.django_db(transaction=True)]

SCAN_FIELDS = {"agency", "month", "year", "userId", "userName", "scanData", "timestamp"}


def scan_message(code, **scan):
    return {
        "agency": "Alfa Romeo",
        "month": "10",
        "year": 2025,
        "userId": "spoofed-id",
        "userName": "Spoofed Name",
        "scanData": {"code": code, "user": "Spoofed Name", "timestamp": "2025-01-15T10:30:00.000Z", **scan},
    }


@database_sync_to_async
def scans():
    return sorted(Scan.objects.values_list("code", flat=True))


@database_sync_to_async
def inventory_of(agency="Alfa Romeo", month=10, year=2025):
    return Inventory.objects.get(agency__name=agency, month=month, year=year)


async def test_joining_greets_with_presence_and_user_joined(ana):
    async with joined(ana, drain=False) as client:
        messages = [await client.receive(), await client.receive()]
        by_type = {m["type"]: m["data"] for m in messages}
        assert by_type["user_joined"]["userName"] == "Ana García"
        assert by_type["user_joined"]["agency"] == "Alfa Romeo"
        assert by_type["user_joined"]["month"] == "10" and by_type["user_joined"]["year"] == 2025
        assert [u["userName"] for u in by_type["presence"]["users"]] == ["Ana García"]


async def test_scan_over_socket_is_saved_and_broadcast_with_protocol_v1s_fields(ana, luis):
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan_message("BARCODE123"))
        for client in (ana_ws, luis_ws):
            message = await client.receive_type("scan_added")
            data = message["data"]
            assert set(data) >= SCAN_FIELDS
            assert data["userName"] == "Ana García"  # the spoofed name is ignored
            assert data["userId"] == str(ana.pk)
            assert data["scanData"]["code"] == "BARCODE123"
            assert data["scanData"]["user"] == "Ana García"
            assert data["scanData"]["timestamp"] == "2025-01-15T10:30:00.000Z"
            assert data["timestamp"].endswith("Z") and len(data["timestamp"]) == 24
            assert data["seq"] == 1
    assert await scans() == ["BARCODE123"]


async def test_scan_removed_over_socket_is_broadcast(ana, luis):
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan_message("A1"))
        await luis_ws.receive_type("scan_added")
        await ana_ws.receive_type("scan_added")
        await luis_ws.send("scan_removed", scan_message("A1"))
        removed = await ana_ws.receive_type("scan_removed")
        assert removed["data"]["scanData"]["code"] == "A1"
        assert removed["data"]["userName"] == "Luis Pérez"
        assert removed["data"]["seq"] == 2
    assert await scans() == []


async def test_duplicate_names_the_first_scanner_and_keeps_the_connection(ana, luis):
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan_message("VIN1"))
        await luis_ws.receive_type("scan_added")
        await luis_ws.send("scan_added", scan_message("VIN1"))
        error = await luis_ws.receive_type("error")
        assert error["data"]["code"] == "duplicate_scan"
        assert "Ana García" in error["data"]["message"]
        assert error["data"]["scannedBy"] == "Ana García"
        await luis_ws.send("ping", {"timestamp": "t1"})
        assert (await luis_ws.receive_type("pong"))["data"]["timestamp"] == "t1"
    assert await scans() == ["VIN1"]


async def test_retried_scan_id_is_stored_once_and_confirmed_to_the_sender(ana, luis):
    scan_id = str(uuid.uuid4())
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan_message("VIN1", id=scan_id))
        first = await ana_ws.receive_type("scan_added")
        await luis_ws.receive_type("scan_added")
        await ana_ws.send("scan_added", scan_message("VIN1", id=scan_id))
        again = await ana_ws.receive_type("scan_added")
        assert again["data"]["replayed"] is True
        assert again["data"]["scanData"]["id"] == first["data"]["scanData"]["id"] == scan_id
        assert await luis_ws.nothing()
    assert await scans() == ["VIN1"]


@pytest.mark.parametrize(
    "frame,code",
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('"text"', "invalid_message"),
        ('{"type": "dance", "data": {}}', "unknown_type"),
        ('{"data": {}}', "unknown_type"),
        ('{"type": 5, "data": {}}', "unknown_type"),
        ('{"type": "scan_added"}', "invalid_data"),
        ('{"type": "scan_added", "data": []}', "invalid_data"),
        ('{"type": "scan_added", "data": "x"}', "invalid_data"),
        ('{"type": "scan_added", "data": {}}', "invalid_data"),
        ('{"type": "scan_added", "data": {"scanData": "A1"}}', "invalid_data"),
        ('{"type": "scan_added", "data": {"scanData": {}}}', "invalid"),
        ('{"type": "scan_added", "data": {"scanData": {"code": 12345}}}', "invalid"),
        ('{"type": "scan_added", "data": {"scanData": {"code": ""}}}', "invalid"),
        ('{"type": "scan_added", "data": {"scanData": {"code": "   "}}}', "invalid"),
        ('{"type": "scan_added", "data": {"scanData": {"code": "' + "x" * 65 + '"}}}', "invalid"),
        ('{"type": "scan_added", "data": {"scanData": {"code": "A1", "id": "nope"}}}', "invalid"),
        ('{"type": "scan_added", "data": {"scanData": {"code": "A1", "timestamp": 5}}}', "invalid"),
        ('{"type": "scan_added", "data": {"month": "13", "scanData": {"code": "A1"}}}', "wrong_room"),
        ('{"type": "scan_removed", "data": {"scanData": {"code": "NOPE"}}}', "scan_not_found"),
        ('{"type": "resume", "data": {"since": "x"}}', "invalid_data"),
        ("[" * 50000, "invalid_json"),
    ],
)
async def test_malformed_messages_get_an_error_change_nothing_and_keep_the_connection(ana, frame, code):
    async with joined(ana) as client:
        await client.ws.send_to(text_data=frame)
        error = await client.receive_type("error")
        assert error["data"]["code"] == code
        assert error["data"]["message"]
        assert error["data"]["timestamp"].endswith("Z")
        await client.send("ping", {"timestamp": "still-open"})
        assert (await client.receive_type("pong"))["data"]["timestamp"] == "still-open"
    assert await scans() == []
    assert (await inventory_of()).status == "open"


async def test_a_scan_without_a_code_is_told_the_code_is_missing(ana):
    async with joined(ana) as client:
        await client.send("scan_added", {"scanData": {"timestamp": "2025-01-15T10:30:00.000Z"}})
        error = await client.receive_type("error")
        assert error["data"]["message"] == "Falta el código (code) del vehículo."
    assert await scans() == []


async def test_binary_frames_that_are_not_utf8_get_an_error(ana):
    async with joined(ana) as client:
        await client.ws.send_to(bytes_data=b"\xff\xfe\x00")
        assert (await client.receive_type("error"))["data"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "room",
    [
        {"agency": "Peugeot Querétaro"},
        {"month": "11"},
        {"year": 2024},
        {"agency": 42},
    ],
)
async def test_a_message_naming_another_room_is_refused(ana, peugeot, room):
    async with joined(ana) as client:
        await client.send("scan_added", {**scan_message("A1"), **room})
        assert (await client.receive_type("error"))["data"]["code"] == "wrong_room"
    assert await scans() == []


async def test_room_fields_may_be_omitted_or_given_by_slug(ana):
    async with joined(ana) as client:
        await client.send("scan_added", {"scanData": {"code": "A1"}})
        await client.receive_type("scan_added")
        await client.send("scan_added", {"agency": "alfa-romeo", "month": "10", "scanData": {"code": "A2"}})
        await client.receive_type("scan_added")
    assert await scans() == ["A1", "A2"]


async def test_ping_answers_the_sender_alone_echoing_its_timestamp(ana, luis):
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.receive_type("user_joined")  # luis arrived
        await ana_ws.send("ping", {"timestamp": "2025-01-15T10:30:00.000Z"})
        pong = await ana_ws.receive_type("pong")
        assert pong["data"]["timestamp"] == "2025-01-15T10:30:00.000Z"
        assert await luis_ws.nothing()


async def test_client_frames_do_not_queue_on_the_one_sync_thread(ana, monkeypatch):
    """Channels' default dispatch sends every frame through the process's one sync thread first
    (close_old_connections); the consumer's does not (its database calls close them themselves)."""
    import channels.consumer

    trips = []

    async def counted():
        trips.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    async with joined(ana) as client:
        for n in range(3):
            await client.send("ping", {"timestamp": f"t{n}"})
            assert (await client.receive_type("pong"))["data"]["timestamp"] == f"t{n}"
        await client.send("scan_added", scan_message("TRIP-1"))
        await client.receive_type("scan_added")
    assert trips == []


async def test_client_user_joined_is_answered_with_presence(ana, luis):
    async with joined(ana) as ana_ws, joined(luis):
        await ana_ws.send(
            "user_joined", {"agency": "Alfa Romeo", "month": "10", "year": 2025, "userName": "X"}
        )
        presence = await ana_ws.receive_type("presence")
        assert sorted(u["userName"] for u in presence["data"]["users"]) == ["Ana García", "Luis Pérez"]


async def test_completion_tells_everyone_closes_every_socket_and_refuses_new_ones(ana, luis):
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan_message("A1"))
        # Protocol v1's own example message, with its `inventoryId` and `completedBy` of another system.
        await ana_ws.send(
            "inventory_completed",
            {
                "agency": "Alfa Romeo",
                "month": "10",
                "year": 2025,
                "completedBy": "John Doe",
                "inventoryId": "inv_123",
                "message": "El inventario ha sido completado por John Doe.",
            },
        )
        for client in (ana_ws, luis_ws):
            await client.receive_type("scan_added")
            completed = await client.receive_type("inventory_completed")
            assert completed["data"]["completedBy"] == "Ana García"
            assert completed["data"]["message"] == "El inventario ha sido completado por Ana García."
            assert completed["data"]["inventoryId"] == str((await inventory_of()).pk)
            terminated = await client.receive_type("session_terminated")
            assert terminated["data"]["message"] == (
                "Tu sesión ha sido terminada porque Ana García completó el inventario."
            )
            assert await client.closed_with() == 1000
    late, connected = await connect_raw(room_path(), token=await token_of(luis))
    assert connected
    assert (await late.receive())["data"]["code"] == "inventory_completed"
    assert await late.closed_with() == protocol.CLOSE_COMPLETED


async def test_a_scan_on_a_completed_inventory_is_refused(ana):
    async with joined(ana) as client:
        await database_sync_to_async(Inventory.objects.update)(status=Inventory.Status.COMPLETED)
        await client.send("scan_added", scan_message("LATE"))
        assert (await client.receive_type("error"))["data"]["code"] == "inventory_completed"
    assert await scans() == []


@pytest.mark.parametrize(
    "path,close_code",
    [
        (room_path(agency="Ferrari"), protocol.CLOSE_NOT_FOUND),
        (room_path(month="13"), protocol.CLOSE_NOT_FOUND),
        (room_path(month="octubre"), protocol.CLOSE_NOT_FOUND),
        (room_path(year="99999"), protocol.CLOSE_NOT_FOUND),
        (room_path(agency="Peugeot Querétaro"), protocol.CLOSE_NOT_FOUND),  # not told it exists
    ],
)
async def test_refusals_are_explained_then_closed(luis, peugeot, path, close_code):
    client, connected = await connect_raw(path, token=await token_of(luis))
    assert connected
    error = await client.receive()
    assert error["type"] == "error" and error["data"]["message"]
    assert await client.closed_with() == close_code


@pytest.mark.parametrize(
    "path",
    ["/nope", "/ws/inventory/Alfa%20Romeo/10", "/ws/inventory/Alfa%20Romeo/10/2025/extra", "/ws/"],
)
async def test_a_path_that_names_no_room_is_explained_and_closed_with_4404(ana, path):
    client, connected = await connect_raw(path, token=await token_of(ana))
    assert connected
    error = await client.receive()
    assert error["data"]["code"] == "not_found"
    assert "/ws/inventory/{agencia}/{mes}/{año}" in error["data"]["message"]
    assert await client.closed_with() == protocol.CLOSE_NOT_FOUND


async def test_anonymous_and_bad_tokens_are_refused_with_4401(alfa):
    for token in (None, "not-a-token"):
        client, _ = await connect_raw(room_path(), token=token)
        assert (await client.receive())["data"]["code"] == "unauthenticated"
        assert await client.closed_with() == protocol.CLOSE_UNAUTHENTICATED


async def test_token_in_the_query_string_authenticates(ana):
    token = await token_of(ana)
    async with joined(ana, room_path(query=f"token={token}")) as client:
        await client.send("ping", {})
        await client.receive_type("pong")


async def test_agency_with_an_accent_in_the_url(ana, peugeot):
    async with joined(ana, room_path(agency="Peugeot Querétaro", month="03", year="2026")) as client:
        await client.send("scan_added", {"scanData": {"code": "P1"}})
        message = await client.receive_type("scan_added")
        assert message["data"]["agency"] == "Peugeot Querétaro"
        assert message["data"]["month"] == "3"


async def test_room_limit_refuses_the_next_connection_with_4429(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_ROOM": 2}
    async with joined(ana), joined(ana):
        client, _ = await connect_raw(room_path(), token=await token_of(ana))
        error = await client.receive()
        assert error["data"]["code"] == "room_full"
        assert await client.closed_with() == protocol.CLOSE_ROOM_FULL
    # Places free up when people leave.
    async with joined(ana):
        pass


async def test_rate_limit_per_user_and_type_shared_by_connections(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 3}
    async with joined(ana) as one, joined(ana) as two:
        for n in range(2):
            await one.send("ping", {"timestamp": str(n)})
            await one.receive_type("pong")
        await two.send("ping", {"timestamp": "2"})
        await two.receive_type("pong")
        await two.send("ping", {"timestamp": "3"})
        error = await two.receive_type("error")
        assert error["data"]["message"] == "Rate limit exceeded"
        assert error["data"]["code"] == "rate_limited"
        await one.send("ping", {"timestamp": "4"})
        assert (await one.receive_type("error"))["data"]["code"] == "rate_limited"
        # Another type has its own budget, and the refused message was not processed.
        await one.send("scan_added", scan_message("A1"))
        await one.receive_type("scan_added")
        for code in ("A2", "A3", "A4"):
            await one.send(
                "scan_added", scan_message(code, id=f"00000000-0000-4000-8000-00000000000{code[1]}")
            )
        # The refusal goes straight to the sender while the accepted scans come back through the
        # channel layer, so with Redis the error may overtake their echoes: read all three.
        replies = await one.receive_types(3)
        accepted = [r["data"]["scanData"]["code"] for r in replies if r["type"] == "scan_added"]
        assert sorted(accepted) == ["A2", "A3"]
        (refused,) = [r for r in replies if r["type"] == "error"]
        # The refusal names the scan it dropped, so a client with several in flight can retry it.
        assert refused["data"]["code"] == "rate_limited"
        assert refused["data"]["scanData"] == {"code": "A4", "id": "00000000-0000-4000-8000-000000000004"}
    assert await scans() == ["A1", "A2", "A3"]


async def test_oversized_frames_close_the_connection_with_1009(ana):
    async with joined(ana) as client:
        big = json.dumps({"type": "scan_added", "data": {"scanData": {"code": "x" * (70 * 1024)}}})
        await client.ws.send_to(text_data=big)
        assert await client.closed_with() == protocol.CLOSE_MESSAGE_TOO_BIG
    assert await scans() == []


async def test_user_joined_on_the_first_connection_and_user_left_after_the_last(ana, luis, settings):
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_GRACE_MS": 200}
    async with joined(ana) as ana_ws:
        async with joined(luis):
            while (await ana_ws.receive_type("user_joined"))["data"]["userName"] != "Luis Pérez":
                pass  # Ana's own
            async with joined(luis):
                pass
            # Luis's second connection came and went: no news for the room.
            assert await ana_ws.nothing(0.5, ignore=("presence",))
        left = await ana_ws.receive_type("user_left")
        assert left["data"]["userName"] == "Luis Pérez"


async def test_resume_with_since_replays_missed_events_in_order(ana, luis, alfa):
    inventory = await database_sync_to_async(services.inventory_get_or_open)(room=Room(alfa, 10, 2025))
    for code in ("A1", "A2", "A3"):
        await database_sync_to_async(services.scan_record)(inventory=inventory, user=luis, code=code)
    await database_sync_to_async(services.scan_remove)(inventory=inventory, user=luis, code="A2")
    async with joined(ana, query="since=1") as client:
        replayed = [await client.receive_type("scan_added"), await client.receive_type("scan_added")]
        assert [m["data"]["seq"] for m in replayed] == [2, 3]
        removed = await client.receive_type("scan_removed")
        assert removed["data"]["seq"] == 4
        # Then the live stream, continuing the sequence.
        await client.send("scan_added", {"scanData": {"code": "A4"}})
        assert (await client.receive_type("scan_added"))["data"]["seq"] == 5
        # A resume message replays again from any point.
        await client.send("resume", {"since": 3})
        assert (await client.receive_type("scan_removed"))["data"]["seq"] == 4
        assert (await client.receive_type("scan_added"))["data"]["seq"] == 5
        # A client that knows of events this inventory never had gets the real state instead.
        await client.send("resume", {"since": 99})
        snapshot = await client.receive_type("snapshot")
        assert snapshot["data"]["seq"] == 5
        assert sorted(s["code"] for s in snapshot["data"]["scans"]) == ["A1", "A3", "A4"]


async def test_resume_older_than_the_log_gets_a_snapshot(ana, luis, alfa):
    from inventory.models import InventoryEvent

    inventory = await database_sync_to_async(services.inventory_get_or_open)(room=Room(alfa, 10, 2025))
    for code in ("A1", "A2", "A3"):
        await database_sync_to_async(services.scan_record)(inventory=inventory, user=luis, code=code)
    await database_sync_to_async(InventoryEvent.objects.filter(seq__lte=2).delete)()
    async with joined(ana, query="since=0") as client:
        snapshot = await client.receive_type("snapshot")
        assert snapshot["data"]["seq"] == 3
        assert sorted(s["code"] for s in snapshot["data"]["scans"]) == ["A1", "A2", "A3"]
        # Without an expected list a plain code has no match; the key is there all the same.
        assert {s["match"] for s in snapshot["data"]["scans"]} == {None}


async def test_the_room_is_told_once_when_a_vanished_instance_takes_a_user_away(ana, settings):
    from realtime.presence import Connection, get_presence

    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_INTERVAL_MS": 200}
    async with joined(ana) as client:
        inventory = await inventory_of()
        # A connection of an instance that dies at once: it never refreshes its entry.
        ghost = Connection("ghost", "99", "Ghost", time.time(), "dead-instance")
        assert (await get_presence().join(inventory.pk, ghost, limit=50)).joined
        left = await client.receive_type("user_left", timeout=2)
        assert (left["data"]["userId"], left["data"]["userName"]) == ("99", "Ghost")
        assert await client.nothing(timeout=0.8)
        assert [c.user_name for c in await get_presence().connections(inventory.pk)] == ["Ana García"]


async def test_live_connections_stay_in_presence_past_the_ttl(ana, settings, fake_clock):
    from realtime.presence import get_presence

    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_INTERVAL_MS": 200}
    async with joined(ana):
        inventory = await inventory_of()
        ttl = realtime_settings.presence_ttl_seconds
        for _ in range(round(2 * ttl / 0.2)):  # two TTLs, a heartbeat at a time
            await fake_clock.run_for(0.2)
            await asyncio.sleep(0.05)  # the heartbeat's refresh, a round trip to the store
        assert len(await get_presence().connections(inventory.pk)) == 1
    assert await get_presence().connections(inventory.pk) == []


async def test_foreign_browser_origins_are_refused(ana):
    client, connected = await connect_raw(
        room_path(), token=await token_of(ana), headers=[(b"origin", b"https://evil.example")]
    )
    assert not connected


async def test_a_session_cookie_alone_does_not_authenticate_a_client_without_origin(ana, client):
    await database_sync_to_async(client.force_login)(ana)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    without_origin, _ = await connect_raw(room_path(), headers=[(b"cookie", cookie)])
    assert (await without_origin.receive())["data"]["code"] == "unauthenticated"
    browser, _ = await connect_raw(
        room_path(), headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")]
    )
    messages = {(await browser.receive())["type"], (await browser.receive())["type"]}
    assert messages == {"presence", "user_joined"}
    await browser.ws.disconnect()


async def test_answers_speak_the_clients_language_and_broadcasts_the_rooms(ana, luis):
    english = [(b"accept-language", b"en-US,en;q=0.9")]
    client, _ = await connect_raw(room_path(), token=await token_of(ana), headers=english)
    await client.receive_type("presence")
    await client.ws.send_to(text_data="not json")
    assert (await client.receive_type("error"))["data"]["message"] == "The message is not valid JSON."
    await client.send("scan_added", {"scanData": {"code": "A1"}})
    added = await client.receive_type("scan_added")
    assert added["data"]["scanData"]["userId"] == str(ana.pk)
    await client.send(
        "scan_added", {"scanData": {"code": "A1", "id": "9b2f7f7e-2f7a-4c5e-8d7a-0a0b0c0d0e0f"}}
    )
    duplicate = await client.receive_type("error")
    assert duplicate["data"]["message"] == "The code A1 was already scanned by Ana García."
    assert duplicate["data"]["scanData"] == {"code": "A1", "id": "9b2f7f7e-2f7a-4c5e-8d7a-0a0b0c0d0e0f"}
    await client.send("inventory_completed", {})
    completed = await client.receive_type("inventory_completed")
    assert completed["data"]["message"] == "El inventario ha sido completado por Ana García."
    await client.ws.disconnect()


async def test_resume_on_the_url_beyond_the_log_gets_a_snapshot(ana):
    async with joined(ana, query="since=42") as client:
        snapshot = await client.receive_type("snapshot")
        assert snapshot["data"]["seq"] == 0 and snapshot["data"]["scans"] == []


async def test_a_revoked_token_can_no_longer_join_a_room(ana):
    from rest_framework.authtoken.models import Token

    token = await token_of(ana)
    await database_sync_to_async(Token.objects.filter(key=token).delete)()
    client, connected = await connect_raw(room_path(), token=token)
    assert connected
    refusal = await client.receive()
    assert refusal["data"]["code"] == "unauthenticated", refusal
    assert await client.closed_with() == protocol.CLOSE_UNAUTHENTICATED


# A removed scan stays removed (issue 11, item 14).


async def test_a_late_retry_of_a_removed_scan_is_refused_with_scan_removed(ana, luis):
    scan_id = str(uuid.uuid4())
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan_message("LATE-1", id=scan_id))
        await ana_ws.receive_type("scan_added")
        await luis_ws.receive_type("scan_added")
        await luis_ws.send("scan_removed", scan_message("LATE-1"))
        await ana_ws.receive_type("scan_removed")
        await luis_ws.receive_type("scan_removed")
        await ana_ws.send("scan_added", scan_message("LATE-1", id=scan_id))
        error = await ana_ws.receive_type("error")
        assert error["data"]["code"] == "scan_removed"
        assert error["data"]["removedBy"] == "Luis Pérez"
        assert error["data"]["scanData"] == {"code": "LATE-1", "id": scan_id}
        assert await luis_ws.nothing()
    assert await scans() == []


async def test_a_retried_removal_by_id_is_answered_alone_and_keeps_a_later_rescan(ana, luis):
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan_message("RE-1"))
        first = (await ana_ws.receive_type("scan_added"))["data"]["scanData"]["id"]
        await luis_ws.receive_type("scan_added")
        await ana_ws.send("scan_removed", scan_message("RE-1", id=first))
        removed = await ana_ws.receive_type("scan_removed")
        assert removed["data"]["scanData"]["id"] == first and removed["data"]["seq"] == 2
        await luis_ws.receive_type("scan_removed")
        await luis_ws.send("scan_added", scan_message("RE-1"))
        rescan = (await luis_ws.receive_type("scan_added"))["data"]["scanData"]["id"]
        await ana_ws.receive_type("scan_added")
        # The removal's answer was lost: the client sends it again.
        await ana_ws.send("scan_removed", scan_message("RE-1", id=first))
        again = await ana_ws.receive_type("scan_removed")
        assert again["data"]["replayed"] is True and "seq" not in again["data"]
        assert again["data"]["scanData"]["id"] == first
        assert again["data"]["userName"] == "Ana García"
        assert await luis_ws.nothing()
    assert await database_sync_to_async(
        lambda: [str(uid) for uid in Scan.objects.values_list("uid", flat=True)]
    )() == [rescan]


async def test_redis_lost_while_joining_is_a_4503_not_a_crash(ana, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from realtime import consumers
    from realtime.presence import get_presence

    async def redis_gone(*args, **kwargs):
        raise RedisConnectionError("Connection refused")  # listed in presence, then Redis went away

    monkeypatch.setattr(consumers.broadcast, "apublish", redis_gone)
    client, connected = await connect_raw(room_path(), token=await token_of(ana))
    assert connected
    error = await client.receive_type("error")
    assert error["data"]["code"] == "unavailable"
    assert await client.closed_with() == protocol.CLOSE_UNAVAILABLE
    inventory = await database_sync_to_async(Inventory.objects.get)()
    assert await get_presence().connections(inventory.pk) == []  # its place was given back
