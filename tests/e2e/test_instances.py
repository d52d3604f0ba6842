"""Several daphne instances sharing Redis (channel layer, presence, limits) and the database."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async

from tests.conftest import token_for
from tests.servers import start_server

from .test_live_rooms import PROTOCOL_SCAN
from .wsclient import LiveClient, ahttp, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOM_INFO = "/api/inventory/websocket/room-info/Alfa%20Romeo/10/2025"


@pytest.fixture
def instances(require_redis, transactional_db, request):
    env = getattr(request, "param", {})
    servers = []
    try:
        for _ in range(2):
            servers.append(start_server(env={"WEBSOCKET_HEARTBEAT_INTERVAL": "1000", **env}))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def tokens(ana, luis, staff):
    return {"ana": token_for(ana), "luis": token_for(luis), "staff": token_for(staff)}


async def test_scans_on_one_instance_reach_clients_on_the_other(instances, tokens):
    a, b = instances
    on_a = await LiveClient.open(room_url(a), tokens["ana"])
    on_b = await LiveClient.open(room_url(b), tokens["luis"])
    try:
        assert (await ahttp(a, "POST", "/api/inventory/save-scan", PROTOCOL_SCAN, tokens["ana"]))[0] == 201
        assert (await on_b.receive_type("scan_added"))["data"]["scanData"]["code"] == "BARCODE123"
        await on_b.send("scan_added", {"scanData": {"code": "FROM-B"}})
        for client in (on_a, on_b):
            codes = set()
            while "FROM-B" not in codes:
                codes.add((await client.receive_type("scan_added"))["data"]["scanData"]["code"])
        status, info = await ahttp(b, "GET", ROOM_INFO, token=tokens["ana"])
        assert info["connections"] == 2 and info["scanCount"] == 2
        assert sorted(u["userName"] for u in info["users"]) == ["Ana García", "Luis Pérez"]
        status, metrics = await ahttp(a, "GET", "/api/inventory/websocket/metrics", token=tokens["staff"])
        assert status == 200
        assert metrics["activeConnections"] == 2 and metrics["activeRooms"] == 1
        started = time.monotonic()
        while len(metrics["instances"]) < 2:  # each instance reports within a heartbeat
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.3)
            metrics = (await ahttp(a, "GET", "/api/inventory/websocket/metrics", token=tokens["staff"]))[1]
        assert sum(i["activeConnections"] for i in metrics["instances"]) == 2
    finally:
        await on_a.close()
        await on_b.close()


@pytest.mark.parametrize("instances", [{"WEBSOCKET_MAX_CONNECTIONS_PER_ROOM": "3"}], indirect=True)
async def test_the_room_limit_holds_across_instances(instances, tokens):
    a, b = instances
    clients = [
        await LiveClient.open(room_url(a), tokens["ana"]),
        await LiveClient.open(room_url(b), tokens["luis"]),
        await LiveClient.open(room_url(a), tokens["luis"]),
    ]
    try:
        for server in (a, b):
            refused = await LiveClient.open(room_url(server), tokens["ana"], greet=False)
            assert (await refused.receive())["data"]["code"] == "room_full"
            assert await refused.wait_close() == 4429
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("instances", [{"WEBSOCKET_RATE_LIMIT_MAX_MESSAGES": "4"}], indirect=True)
async def test_the_rate_limit_is_shared_by_a_users_connections_on_every_instance(instances, tokens):
    a, b = instances
    on_a = await LiveClient.open(room_url(a), tokens["ana"])
    on_b = await LiveClient.open(room_url(b), tokens["ana"])
    try:
        for n in range(2):
            for client in (on_a, on_b):
                await client.send("ping", {"timestamp": str(n)})
                await client.receive_type("pong")
        await on_b.send("ping", {"timestamp": "over"})
        error = await on_b.receive_type("error")
        assert error["data"]["message"] == "Rate limit exceeded"
    finally:
        await on_a.close()
        await on_b.close()


async def test_completion_closes_the_sockets_on_every_instance(instances, tokens):
    a, b = instances
    on_a = await LiveClient.open(room_url(a), tokens["ana"])
    on_b = await LiveClient.open(room_url(b), tokens["luis"])
    await on_a.send("inventory_completed", {"agency": "Alfa Romeo", "month": "10", "year": 2025})
    for client in (on_a, on_b):
        await client.receive_type("inventory_completed")
        await client.receive_type("session_terminated")
        assert await client.wait_close() == 1000
    refused = await LiveClient.open(room_url(b), tokens["ana"], greet=False)
    assert (await refused.receive())["data"]["code"] == "inventory_completed"
    assert await refused.wait_close() == 4409


async def test_a_killed_instance_leaves_presence_within_two_heartbeats(instances, tokens):
    a, b = instances
    survivor = await LiveClient.open(room_url(a), tokens["ana"])
    await LiveClient.open(room_url(b), tokens["luis"])  # its instance is about to die
    try:
        assert (await ahttp(a, "GET", ROOM_INFO, token=tokens["ana"]))[1]["connections"] == 2
        await asyncio.to_thread(b.kill)  # SIGKILL: it cleans nothing up
        killed = time.monotonic()
        while (await ahttp(a, "GET", ROOM_INFO, token=tokens["ana"]))[1]["connections"] != 1:
            await asyncio.sleep(0.1)
        assert time.monotonic() - killed <= 2.0 + 0.5  # two heartbeats of 1 s, plus polling
        # The people still in the room are told, once, that Luis left with his instance.
        left = await survivor.receive_type("user_left", timeout=5)
        assert left["data"]["userName"] == "Luis Pérez"
        assert time.monotonic() - killed <= 3.0 + 0.5  # found by the survivor's next refresh
        # The survivor's room keeps working.
        await survivor.send("scan_added", {"scanData": {"code": "AFTER-KILL"}})
        assert (await survivor.receive_type("scan_added"))["data"]["scanData"]["code"] == "AFTER-KILL"
    finally:
        await survivor.close()


@pytest.mark.parametrize("instances", [{"WEBSOCKET_MAX_CONNECTIONS_PER_USER": "2"}], indirect=True)
async def test_the_per_user_limit_holds_across_instances(instances, tokens):
    a, b = instances
    clients = [
        await LiveClient.open(room_url(a), tokens["ana"]),
        await LiveClient.open(room_url(b), tokens["ana"]),
    ]
    try:
        for server in (a, b):
            refused = await LiveClient.open(room_url(server), tokens["ana"], greet=False)
            assert (await refused.receive())["data"]["code"] == "user_connection_limit"
            assert await refused.wait_close() == 4429
        # Someone else still gets in.
        clients.append(await LiveClient.open(room_url(b), tokens["luis"]))
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("instances", [{"WEBSOCKET_CONNECT_RATE_PER_USER": "3"}], indirect=True)
async def test_the_connect_rate_is_counted_across_instances(instances, tokens):
    a, b = instances
    for server in (a, b, a):
        await (await LiveClient.open(room_url(server), tokens["ana"])).close()
    refused = await LiveClient.open(room_url(b), tokens["ana"], greet=False)
    error = (await refused.receive())["data"]
    assert error["code"] == "connect_rate_limited" and error["retryAfter"] >= 1
    assert await refused.wait_close() == 4429


async def closed_within(client, seconds: float) -> tuple[str, int, float]:
    """The error code and close code the server ends the socket with, and how long it took."""
    started = time.monotonic()
    error = await client.receive_type("error", timeout=seconds)
    code = await client.wait_close(timeout=seconds)
    return error["data"]["code"], code, time.monotonic() - started


@pytest.mark.parametrize("how", ["membership", "token"])
async def test_a_revocation_closes_the_users_sockets_on_every_instance_within_2_seconds(
    instances, tokens, luis, alfa, how
):
    a, b = instances
    on_a = await LiveClient.open(room_url(a), tokens["luis"])
    on_b = await LiveClient.open(room_url(b), tokens["luis"])
    bystander = await LiveClient.open(room_url(b), tokens["ana"])
    try:
        started = time.monotonic()
        if how == "membership":  # an admin removes Luis from the agency (here: this process)
            await database_sync_to_async(alfa.members.remove)(luis)
            expected = ("access_revoked", 4403)
        else:  # Luis revokes his own token through instance A's API
            status, _ = await ahttp(a, "DELETE", "/api/auth/token/", token=tokens["luis"])
            assert status in (200, 204), status
            expected = ("unauthenticated", 4401)
        results = await asyncio.gather(closed_within(on_a, 5), closed_within(on_b, 5))
        elapsed = time.monotonic() - started
        print(f"\nREVOCATION ({how}): both sockets closed {[r[:2] for r in results]} within {elapsed:.3f} s")
        assert [result[:2] for result in results] == [expected, expected]
        assert elapsed < 2.0
        # Nobody else was touched.
        await bystander.send("ping", {"timestamp": "still-here"})
        assert (await bystander.receive_type("pong"))["data"]["timestamp"] == "still-here"
    finally:
        for client in (on_a, on_b, bystander):
            await client.close()
