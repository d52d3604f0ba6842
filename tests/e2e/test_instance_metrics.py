"""Operators' figures from real daphne processes: ping round trips per room and instance, and
counters that never fall when an instance dies."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import token_for
from tests.servers import running_server

from .wsclient import LiveClient, ahttp, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A heartbeat of 1 s: daphne pings every idle socket every 1-2 s; an instance is taken for dead 3 s
# after its last report.
FAST = {"WEBSOCKET_HEARTBEAT_INTERVAL": "1000"}
WAIT = 20  # seconds the tests wait for a figure to appear before failing


async def wait_for(read, ready, what: str):
    deadline = time.monotonic() + WAIT
    while True:
        value = await read()
        if ready(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {WAIT} s: {value}")
        await asyncio.sleep(0.5)


def families_of(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def prometheus(server, token) -> dict:
    status, text = await ahttp(server, "GET", "/metrics", token=token)
    assert status == 200, text
    return families_of(text)


async def test_ping_round_trip_is_measured_per_room_and_instance(ana, staff):
    ana_token, staff_token = await database_sync_to_async(lambda: (token_for(ana), token_for(staff)))()
    with running_server(env=FAST) as server:
        # The room named by its slug: the figures name it by its key.
        client = await LiveClient.open(room_url(server, agency="alfa-romeo"), ana_token)
        try:

            async def figures():
                return (await ahttp(server, "GET", "/api/inventory/websocket/metrics", token=staff_token))[1]

            seen = await wait_for(figures, lambda f: f["pingLatencyMs"]["count"] >= 2, "two pings answered")
            ping = seen["pingLatencyMs"]
            assert 0 <= ping["p50"] <= ping["p95"] <= ping["p99"] <= ping["max"]
            [room] = seen["rooms"]
            assert room["room"] == "Alfa Romeo/10/2025"
            assert room["pingLatencyMs"]["p50"] is not None
            [instance] = seen["instances"]
            assert instance["pingLatencyMs"]["count"] >= 2
            assert instance["roomPingLatencyMs"]["Alfa Romeo/10/2025"]["p99"] is not None

            families = await prometheus(server, staff_token)
            counts = [s for s in families["inventory_ws_ping_rtt_ms"].samples if s.name.endswith("_count")]
            assert [s.labels for s in counts] == [{"instance": instance["instance"]}]
            assert counts[0].value >= 2
            rooms = {
                (s.labels["room"], s.labels["quantile"])
                for s in families["inventory_ws_room_ping_rtt_ms"].samples
            }
            assert {("Alfa Romeo/10/2025", q) for q in ("0.5", "0.95", "0.99")} <= rooms

            out = io.StringIO()
            await sync_to_async(call_command)(
                "room_metrics", "--url", server.http, "--token", staff_token, stdout=out
            )
            table = out.getvalue()
            assert "ping round trip p50/p95/p99/max ms" in table and "ping p50/p95/p99 ms" in table
        finally:
            await client.close()


async def test_a_dead_instance_keeps_its_last_figures_marked_gone_and_counters_never_fall(
    require_redis, ana, staff
):
    ana_token, staff_token = await database_sync_to_async(lambda: (token_for(ana), token_for(staff)))()
    with running_server(env=FAST) as survivor, running_server(env=FAST) as doomed:
        client = await LiveClient.open(room_url(doomed), ana_token)
        for n in range(3):
            await client.send("ping", {"timestamp": f"t{n}"})
            await client.receive_type("pong")

        def received(families) -> float:
            samples = families["inventory_ws_messages_received"].samples
            return sum(s.value for s in samples if s.name.endswith("_total"))

        before = await wait_for(
            lambda: prometheus(survivor, staff_token),
            lambda f: received(f) >= 3,
            "the doomed instance's report",
        )
        [doomed_id] = {s.labels["instance"] for s in before["inventory_ws_instance_up"].samples}
        doomed.kill()

        async def from_redis():
            out = io.StringIO()
            await sync_to_async(call_command)("room_metrics", "--json", stdout=out)
            return json.loads(out.getvalue())

        figures = await wait_for(from_redis, lambda f: f.get("goneInstances"), "the instance taken for gone")
        [gone] = figures["goneInstances"]
        assert (gone["instance"], gone["gone"], gone["messagesReceived"]) == (doomed_id, True, 3)
        assert gone["goneAt"] and gone["updatedAt"]
        assert doomed_id not in [instance["instance"] for instance in figures["instances"]]
        assert figures["messagesReceived"] >= 3  # its count still in the total

        after = await prometheus(survivor, staff_token)
        assert received(after) >= received(before)
        up = {s.labels["instance"]: s.value for s in after["inventory_ws_instance_up"].samples}
        assert up[doomed_id] == 0
        out = io.StringIO()
        await sync_to_async(call_command)("room_metrics", stdout=out)
        assert "gone at" in out.getvalue()
        await client.close()
