"""The documented server options keep the protocol whole: `manage.py serve --server uvicorn`, and
the PostgreSQL connection pool (`DATABASE_POOL=true`)."""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress

import pytest
import websockets
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect

from inventory.models import Scan
from realtime.conf import realtime_settings
from tests.conftest import token_for
from tests.servers import running_server

from .wsclient import LiveClient, health_status, post_scan, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def uvicorn_server(transactional_db):
    with running_server(env={"ASGI_SERVER": "uvicorn"}) as live:
        yield live


async def test_uvicorn_serves_rooms_limits_and_health(uvicorn_server, ana, luis):
    tokens = await database_sync_to_async(lambda: (token_for(ana), token_for(luis)))()
    assert await asyncio.to_thread(health_status, uvicorn_server) == 200
    counter, watcher = [await LiveClient.open(room_url(uvicorn_server), token) for token in tokens]
    try:
        await counter.send("scan_added", {"scanData": {"code": "VIN-UVICORN-1"}})
        seen = await watcher.receive_type("scan_added")
        assert seen["data"]["scanData"]["code"] == "VIN-UVICORN-1" and seen["data"]["seq"] >= 1
        assert await database_sync_to_async(Scan.objects.filter(code="VIN-UVICORN-1").count)() == 1
        await watcher.send("ping", {"timestamp": "uvicorn"})
        assert (await watcher.receive_type("pong"))["data"]["timestamp"] == "uvicorn"
    finally:
        await counter.close()
        await watcher.close()

    # Over 64 KiB: the consumer's error, then 1009, as on daphne.
    frame = '{"type": "ping", "data": {"timestamp": "' + "x" * realtime_settings.MAX_FRAME_BYTES + '"}}'
    auth = {"Authorization": f"Token {tokens[0]}"}
    async with connect(room_url(uvicorn_server), additional_headers=auth) as ws:
        await ws.send(frame)
        codes = []
        with suppress(websockets.ConnectionClosed):
            while True:
                codes.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["data"].get("code"))
        assert codes[-1] == "message_too_big" and ws.close_code == 1009, (codes, ws.close_code)


@pytest.fixture
def pooled_server(require_postgres, transactional_db):
    with running_server(env={"DATABASE_POOL": "true"}) as live:
        yield live


@pytest.mark.postgres
async def test_the_connection_pool_serves_rest_and_socket_writes(pooled_server, ana, luis):
    tokens = await database_sync_to_async(lambda: (token_for(ana), token_for(luis)))()
    watcher = await LiveClient.open(room_url(pooled_server), tokens[1])
    try:
        for number in range(20):  # every write borrows a connection and gives it back
            code = f"VIN-POOL-{number}"
            if number % 2:
                assert await asyncio.to_thread(post_scan, pooled_server, code, tokens[0]) == 201
            else:
                await watcher.send("scan_added", {"scanData": {"code": code}})
            seen = await watcher.receive_type("scan_added")
            assert seen["data"]["scanData"]["code"] == f"VIN-POOL-{number}"
    finally:
        await watcher.close()
    codes = await database_sync_to_async(lambda: set(Scan.objects.values_list("code", flat=True)))()
    assert codes == {f"VIN-POOL-{number}" for number in range(20)}
