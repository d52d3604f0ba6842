"""Operators' figures: metrics endpoint, Prometheus text, room_metrics command."""

import io
import json

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import token_for

from .helpers import joined

pytestmark = [pytest.mark.django_db(transaction=True)]


async def get(api_for, user, path):
    return await sync_to_async(lambda: api_for(user).get(path))()


async def test_metrics_count_connections_messages_and_latency(api_for, ana, luis, staff):
    async with joined(ana) as one, joined(luis):
        await one.send("scan_added", {"scanData": {"code": "A1"}})
        await one.receive_type("scan_added")
        await one.send("dance", {})
        await one.receive_type("error")
        figures = (await get(api_for, staff, "/api/inventory/websocket/metrics")).json()
        assert figures["activeConnections"] == 2
        assert figures["activeRooms"] == 1
        assert [(room["room"], room["connections"]) for room in figures["rooms"]] == [
            ("Alfa Romeo/10/2025", 2)
        ]
        assert figures["userSessions"] == 2
        assert figures["messagesReceived"] == 2
        assert figures["errors"] == 1 and figures["errorsByCode"] == {"unknown_type": 1}
        latency = figures["deliveryLatencyMs"]
        assert latency["count"] >= 2  # the scan reached both sockets
        assert 0 <= latency["p50"] <= latency["p99"] <= latency["max"]
        assert figures["instances"][0]["activeConnections"] == 2
        text = (await get(api_for, staff, "/metrics")).content.decode()
        instance = figures["instances"][0]["instance"]
        assert "inventory_ws_connections 2.0" in text
        assert f'inventory_ws_errors_total{{code="unknown_type",instance="{instance}"}} 1.0' in text
        assert f'inventory_ws_delivery_latency_ms{{instance="{instance}",quantile="0.99"}}' in text
        # A valid exposition: the latency is a summary with its count; every counter is per instance.
        families = {family.name: family for family in text_string_to_metric_families(text)}
        assert families["inventory_ws_delivery_latency_ms"].type == "summary"
        count = [s for s in families["inventory_ws_delivery_latency_ms"].samples if s.name.endswith("_count")]
        assert [(s.labels, s.value) for s in count] == [({"instance": instance}, latency["count"])]
        sent = families["inventory_ws_messages_sent"].samples
        assert [(s.labels, s.value) for s in sent if s.name.endswith("_total")] == [
            ({"instance": instance}, figures["instances"][0]["messagesSent"])
        ]
        assert [(s.labels, s.value) for s in families["inventory_ws_instance_up"].samples] == [
            ({"instance": instance}, 1.0)
        ]
    # Empty rooms disappear from the figures.
    figures = (await get(api_for, staff, "/api/inventory/websocket/metrics")).json()
    assert figures["activeRooms"] == 0 and figures["rooms"] == []


def test_prometheus_metrics_are_for_staff(api_for, ana, staff):
    assert api_for(ana).get("/metrics").status_code == 403
    assert api_for().get("/metrics").status_code == 401
    response = api_for(staff).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.e2e
def test_room_metrics_command_reads_a_running_server(server, ana, staff):
    import asyncio

    from tests.e2e.wsclient import LiveClient, room_url

    ana_token, staff_token = token_for(ana), token_for(staff)

    async def scenario():
        client = await LiveClient.open(room_url(server), ana_token)
        try:
            out = io.StringIO()
            await sync_to_async(call_command)(
                "room_metrics", "--json", "--url", server.http, "--token", staff_token, stdout=out
            )
            figures = json.loads(out.getvalue())
            assert figures["activeConnections"] == 1
            out = io.StringIO()
            await sync_to_async(call_command)("room_metrics", "--url", server.http, stdout=out)
            table = out.getvalue()
            assert "Alfa Romeo/10/2025" in table and "connections" in table
        finally:
            await client.close()

    asyncio.run(scenario())


def test_room_metrics_reads_redis_directly(require_redis, ana):
    import asyncio

    from inventory import services
    from inventory.access import Room
    from realtime.presence import Connection, get_presence

    inventory = services.inventory_get_or_open(room=Room(ana.agencies.get(name="Alfa Romeo"), 10, 2025))

    async def join():
        await get_presence().join(
            inventory.pk, Connection("c1", str(ana.pk), "Ana García", 0.0, "other"), limit=50
        )

    asyncio.run(join())
    out = io.StringIO()
    call_command("room_metrics", "--json", stdout=out)
    figures = json.loads(out.getvalue())
    assert figures["activeConnections"] == 1
    assert figures["rooms"] == [
        {
            "inventoryId": str(inventory.pk),
            "connections": 1,
            "room": "Alfa Romeo/10/2025",
            "pingLatencyMs": {"p50": None, "p95": None, "p99": None},  # no socket here pinged
        }
    ]
