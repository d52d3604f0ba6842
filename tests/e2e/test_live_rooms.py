"""End to end: real daphne processes, real WebSocket clients, real HTTP."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async

from inventory.models import Scan
from realtime.wire import PRESENCE_CHATTER
from tests.conftest import token_for

from .wsclient import LiveClient, ahttp, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tokens(ana, luis, staff):
    return {"ana": token_for(ana), "luis": token_for(luis), "staff": token_for(staff)}


PROTOCOL_SCAN = {
    "agency": "Alfa Romeo",
    "month": "10",
    "year": 2025,
    "userId": "user123",
    "userName": "John Doe",
    "scanData": {"code": "BARCODE123", "user": "John Doe", "timestamp": "2025-01-15T10:30:00.000Z"},
}


async def test_rest_scan_reaches_the_room_and_no_other_room(server, tokens, peugeot):
    in_room = await LiveClient.open(room_url(server), tokens["luis"])
    other_month = await LiveClient.open(room_url(server, month="11"), tokens["luis"])
    other_agency = await LiveClient.open(room_url(server, agency="Peugeot Querétaro"), tokens["ana"])
    try:
        status, body = await ahttp(server, "POST", "/api/inventory/save-scan", PROTOCOL_SCAN, tokens["ana"])
        assert status == 201, body
        message = await in_room.receive_type("scan_added")
        data = message["data"]
        assert {"agency", "month", "year", "userId", "userName", "scanData", "timestamp"} <= set(data)
        assert (data["agency"], data["month"], data["year"]) == ("Alfa Romeo", "10", 2025)
        assert data["userName"] == "Ana García"
        assert data["scanData"] == {
            "code": "BARCODE123",
            "user": "Ana García",
            "timestamp": "2025-01-15T10:30:00.000Z",
            "id": body["id"],
            "userId": str(body["userId"]),
        }
        assert await other_month.nothing() and await other_agency.nothing()
    finally:
        for client in (in_room, other_month, other_agency):
            await client.close()


async def test_finish_session_delivers_completed_then_terminated_and_closes(server, tokens):
    client = await LiveClient.open(room_url(server), tokens["luis"])
    await ahttp(server, "POST", "/api/inventory/save-scan", PROTOCOL_SCAN, tokens["ana"])
    room = {"agency": "Alfa Romeo", "month": "10", "year": 2025}
    status, _ = await ahttp(server, "POST", "/api/inventory/finish-session", room, tokens["ana"])
    assert status == 200
    kinds = []
    while len(kinds) < 3:
        message = await client.receive()
        if message["type"] not in PRESENCE_CHATTER:
            kinds.append((message["type"], message["data"].get("message")))
    assert kinds == [
        ("scan_added", None),
        ("inventory_completed", "El inventario ha sido completado por Ana García."),
        ("session_terminated", "Tu sesión ha sido terminada porque Ana García completó el inventario."),
    ]
    assert await client.wait_close() == 1000


async def test_accented_agency_and_rest_delete_over_a_real_server(server, tokens, peugeot):
    client = await LiveClient.open(
        room_url(server, agency="Peugeot Querétaro", month="3", year="2026"), tokens["ana"]
    )
    try:
        body = {"agency": "Peugeot Querétaro", "month": "03", "year": 2026, "code": "VIN-Ñ-1"}
        assert (await ahttp(server, "POST", "/api/inventory/save-scan", body, tokens["ana"]))[0] == 201
        assert (await client.receive_type("scan_added"))["data"]["scanData"]["code"] == "VIN-Ñ-1"
        path = "/api/inventory/delete-scanned-entry?agency=Peugeot%20Quer%C3%A9taro&code=VIN-%C3%91-1"
        assert (await ahttp(server, "DELETE", path, token=tokens["ana"]))[0] == 200
        removed = await client.receive_type("scan_removed")
        assert removed["data"]["agency"] == "Peugeot Querétaro"
    finally:
        await client.close()


async def test_the_manual_testing_client_of_protocol_v1_works_with_a_token(server, tokens):
    """Protocol v1's example: connect, send its user_joined message verbatim, then scan."""
    client = await LiveClient.open(room_url(server, query=f"token={tokens['ana']}"), greet=False)
    try:
        assert (await client.receive())["type"] == "presence"
        await client.send(
            "user_joined",
            {
                "agency": "Alfa Romeo",
                "month": "10",
                "year": 2025,
                "userId": "test123",
                "userName": "Test User",
            },
        )
        joined = await client.receive_type("user_joined")
        assert joined["data"]["userName"] == "Ana García"
        presence = await client.receive_type("presence")
        assert [u["userName"] for u in presence["data"]["users"]] == ["Ana García"]
        await client.send("scan_added", {**PROTOCOL_SCAN})
        assert (await client.receive_type("scan_added"))["data"]["scanData"]["code"] == "BARCODE123"
        await client.send("ping", {"timestamp": "2025-01-15T10:30:00.000Z"})
        assert (await client.receive_type("pong"))["data"]["timestamp"] == "2025-01-15T10:30:00.000Z"
    finally:
        await client.close()
    assert await database_sync_to_async(Scan.objects.count)() == 1


async def test_a_connection_killed_without_a_close_frame_leaves_room_info(transactional_db, tokens):
    from tests.servers import start_server

    server = await asyncio.to_thread(start_server, env={"WEBSOCKET_HEARTBEAT_INTERVAL": "1000"})
    try:
        client = await LiveClient.open(room_url(server), tokens["ana"])
        path = "/api/inventory/websocket/room-info/Alfa%20Romeo/10/2025"
        status, info = await ahttp(server, "GET", path, token=tokens["luis"])
        assert status == 200 and info["connections"] == 1
        assert info["users"][0]["userName"] == "Ana García"
        client.ws.transport.abort()  # the network vanishes: no close frame
        started = time.monotonic()
        while (await ahttp(server, "GET", path, token=tokens["luis"]))[1]["connections"]:
            assert time.monotonic() - started < 6, "the dead connection stayed in room-info"
            await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(server.stop)


async def test_unauthenticated_socket_gets_4401_over_a_real_server(server, alfa):
    client = await LiveClient.open(room_url(server), greet=False)
    assert (await client.receive())["data"]["code"] == "unauthenticated"
    assert await client.wait_close() == 4401
