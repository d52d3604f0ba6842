"""`/health` tells the truth under Redis: a busy instance (sockets open) still answers ok at once."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests.conftest import token_for
from tests.servers import running_server

from .wsclient import LiveClient, ahttp, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("layer", ["core", "pubsub"])
async def test_health_is_ok_with_sockets_open_on_redis(require_redis, ana, staff, layer):
    ana_token, staff_token = await database_sync_to_async(lambda: (token_for(ana), token_for(staff)))()
    with running_server(env={"REDIS_CHANNEL_LAYER": layer}) as server:
        sockets = [await LiveClient.open(room_url(server), ana_token) for _ in range(3)]
        try:
            for _ in range(3):
                status, body = await ahttp(server, "GET", "/health", timeout=10)
                assert (status, body["channelLayer"], body["status"]) == (200, "ok", "ok"), body
            status, body = await ahttp(server, "GET", "/health/detailed", token=staff_token, timeout=10)
            assert status == 200, body
            assert body["channelLayer"]["ok"] is True
            assert body["websocket"]["activeConnections"] == 3, body["websocket"]
            # The check left nothing behind: the sockets still get their room's messages.
            await sockets[0].send("ping", {"timestamp": "after-health"})
            assert (await sockets[0].receive_type("pong"))["data"]["timestamp"] == "after-health"
        finally:
            for socket in sockets:
                await socket.close()
