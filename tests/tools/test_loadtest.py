"""The load test's own logic: latency summaries, combining workers, URLs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from array import array

import pytest
from django.core.management import CommandError, call_command

from tools.loadtest import plan
from tools.loadtest.client import RoomClient, RoomState, Sink, chatter_type
from tools.loadtest.http_client import HttpClient
from tools.loadtest.publisher import publish_room
from tools.loadtest.shapes import Room, room_problems
from tools.loadtest.stats import latency_summary, summarize
from tools.tracking import Tally

from .test_tracking import scans


def test_latency_summary_reports_milliseconds():
    summary = latency_summary([0.010, 0.020, 0.030, 0.040, 1.0])
    assert summary == {"count": 5, "p50": 30.0, "p95": 1000.0, "p99": 1000.0, "max": 1000.0, "mean": 220.0}
    assert latency_summary([])["p50"] is None


# Combining the workers.


def worker_result(index=0, **overrides):
    result = {
        "worker": index,
        "connections": {
            "attempted": 6,
            "accepted": 5,
            "refused_room_full": 1,
            "refused": {},
            "dropped": {},
        },
        "rooms": [
            {
                "key": f"Loadtest {index}/11/2026",
                "sent": 4,
                "rejected": {"rate_limited": 1},
                "stored_ids": ["a", "b", "c"],
                "orders": scans("abcd"),
                # Five clients to the end: four received up to "c", one only up to "b".
                "horizons": [2, 2, 2, 2, 1],
                "publisher": True,
            }
        ],
        "tally": Tally(expected=15, received=15).as_dict(),
        "errors": {"rate_limited": 1},
        "latencies": array("d", [0.01, 0.02, 0.03]),
        "first_send": 100.0,
        "last_receipt": 101.5,
        "answered": 0,
        "last_answer": None,
        "join": {
            "started": 90.0,
            "last_joined": 91.0,
            "last_message": 91.5,
            "chatter_over": True,
            "messages": {"presence": 5, "user_joined": 15},
        },
        "cpu": {"connect": {"cpu": 0.5, "wall": 1.0}, "publish": {"cpu": 0.2, "wall": 2.0}},
    }
    result.update(overrides)
    return result


def test_summarize_adds_up_workers():
    report = summarize([worker_result(0), worker_result(1, first_send=99.0)], run={"id": "x"})
    assert report["connections"] == {
        "attempted": 12,
        "accepted": 10,
        "refused_room_full": 2,
        "refused_other": {},
        "dropped": {},
        "seconds": 1.0,
    }
    assert report["scans"] == {"sent": 8, "stored": 6, "rejected": 2, "unconfirmed": 0}
    assert report["deliveries"]["expected"] == 30
    assert report["deliveries"]["lost"] == 0
    assert report["deliveries"]["per_second"] == 12.0  # 30 deliveries from 99.0 to 101.5
    assert report["latency_ms"]["count"] == 6
    assert report["errors"] == {"rate_limited": 2}
    assert report["ok"] is True


def test_the_join_runs_from_the_first_handshake_to_the_last_message_of_any_worker():
    late = {"started": 90.5, "last_joined": 92.0, "last_message": 91.8, "chatter_over": True, "retries": 3}
    late["messages"] = {"presence": 5, "user_joined": 10, "user_left": 1}
    report = summarize([worker_result(0), worker_result(1, join=late)], run={})
    assert report["join"] == {
        "retries": 3,
        "joined_seconds": 2.0,  # from 90.0 (worker 0's first handshake) to 92.0 (worker 1's last client in)
        "settled_seconds": 2.0,  # worker 0's chatter ended at 91.5, before worker 1's last client was in
        "chatter_over": True,
        "messages": {"presence": 10, "user_joined": 25, "user_left": 1},
        "messages_total": 36,
        "messages_per_client": 3.6,
    }


def test_a_join_still_receiving_when_the_wait_ended_is_reported():
    busy = {**worker_result()["join"], "chatter_over": False, "last_message": 105.0}
    report = summarize([worker_result(0), worker_result(1, join=busy)], run={})
    assert report["join"]["chatter_over"] is False
    assert report["join"]["settled_seconds"] == 15.0


def test_rest_requests_per_second_count_answers_from_the_first_send_to_the_last_answer():
    report = summarize(
        [worker_result(0, answered=30, last_answer=102.0), worker_result(1, answered=10, last_answer=101.0)],
        run={},
    )
    assert report["requests"] == {"answered": 40, "per_second": 20.0, "window_seconds": 2.0}
    assert summarize([worker_result()], run={})["requests"]["per_second"] is None


def test_a_rate_limited_scan_is_an_error_not_a_loss():
    report = summarize([worker_result()], run={})
    assert report["errors"] == {"rate_limited": 1}
    assert report["scans"]["unconfirmed"] == 0
    assert report["deliveries"]["lost"] == 0


def test_a_scan_stored_in_the_database_that_no_client_saw_is_expected_by_every_client():
    room = {**worker_result()["rooms"][0], "rejected": {}, "stored_ids": ["a", "c", "d"]}
    report = summarize([worker_result(rooms=[room])], run={}, stored_in_db={room["key"]: set("abcd")})
    assert report["scans"] == {"sent": 4, "stored": 4, "rejected": 0, "unconfirmed": 0}
    # "b" never reached anyone: lost for the four clients that got "c" after it, late for the fifth.
    assert report["deliveries"]["expected"] == 20
    assert (report["deliveries"]["lost"], report["deliveries"]["late"]) == (4, 1)
    assert report["failures"] == [
        "4 deliveries lost",
        "1 deliveries still missing when the drain timeout passed",
    ]


def test_a_scan_neither_stored_nor_refused_fails_the_run():
    room = {**worker_result()["rooms"][0], "rejected": {}}
    report = summarize([worker_result(rooms=[room])], run={})
    assert report["scans"]["unconfirmed"] == 1
    assert not report["ok"]


def test_duplicates_and_disorder_fail_the_run():
    tally = Tally(expected=15, received=15, duplicated=1, out_of_order=2).as_dict()
    report = summarize([worker_result(tally=tally)], run={})
    assert report["failures"] == ["1 deliveries duplicated", "2 deliveries out of order"]


def test_a_run_where_nobody_got_in_is_not_ok():
    connections = {
        "attempted": 3,
        "accepted": 0,
        "refused_room_full": 0,
        "refused": {"4401": 3},
        "dropped": {},
    }
    room = {**worker_result()["rooms"][0], "sent": 0, "rejected": {}, "stored_ids": [], "horizons": []}
    report = summarize(
        [worker_result(connections=connections, rooms=[room], tally=Tally().as_dict(), latencies=[])], run={}
    )
    assert report["connections"]["refused_other"] == {"4401": 3}
    assert report["failures"] == ["no connection was accepted"]


def test_a_worker_above_ninety_percent_of_a_core_is_saturated():
    busy = {"connect": {"cpu": 0.1, "wall": 1.0}, "publish": {"cpu": 9.5, "wall": 10.0}}
    report = summarize([worker_result(0), worker_result(1, cpu=busy)], run={})
    assert report["client"]["saturated_workers"] == [1]
    assert report["client"]["workers"][1]["cpu_percent"] == {"connect": 10.0, "publish": 95.0}


# URLs and rooms.


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:5000", "ws://localhost:5000/ws/inventory"),
        ("https://example.com/", "wss://example.com/ws/inventory"),
        ("ws://127.0.0.1:8000", "ws://127.0.0.1:8000/ws/inventory"),
        ("localhost:5000", "ws://localhost:5000/ws/inventory"),
    ],
)
def test_ws_base_url_is_derived_from_the_server_url(url, expected):
    assert plan.ws_base_url(url, "/ws/inventory/") == expected


def test_room_urls_encode_the_agency():
    assert (
        plan.room_ws_url("ws://h/ws/inventory", "Peugeot Querétaro/Norte", 3, 2025)
        == "ws://h/ws/inventory/Peugeot%20Quer%C3%A9taro%2FNorte/3/2025"
    )


def test_rooms_are_dealt_round_robin_to_at_most_one_worker_each():
    rooms = [plan.RoomPlan(i, f"A{i}", 1, 2025, ("t",)) for i in range(5)]
    assert [[r.index for r in share] for share in plan.split_rooms(rooms, 2)] == [[0, 2, 4], [1, 3]]
    assert len(plan.split_rooms(rooms[:2], 8)) == 2


def test_scans_per_room():
    assert plan.scans_per_room(5, 3) == 15
    assert plan.scans_per_room(0.5, 3) == 2


# The smoke check's shape check.


def protocol_scan(**overrides):
    data = {
        "agency": "Alfa Romeo",
        "month": "10",
        "year": 2025,
        "userId": "7",
        "userName": "Ana García",
        "scanData": {"code": "VIN1", "user": "Ana García", "timestamp": "2025-10-01T10:30:00.000Z"},
        "timestamp": "2025-10-01T10:30:00.123Z",
        "seq": 3,
    }
    data.update(overrides)
    return data


def test_a_broadcast_in_protocol_v1s_shape_has_no_problems():
    assert room_problems(protocol_scan(), Room("Alfa Romeo", 10, 2025), code="VIN1") == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"month": 10}, "month"),
        ({"year": "2025"}, "year"),
        ({"userId": 7}, "userId"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"scanData": {"code": "VIN1", "user": "Ana"}}, "scanData.timestamp"),
        (
            {"scanData": {"code": "OTHER", "user": "Ana", "timestamp": "2025-10-01T10:30:00Z"}},
            "scanData.code",
        ),
    ],
)
def test_a_broadcast_that_differs_from_protocol_v1_is_reported(overrides, problem):
    problems = room_problems(protocol_scan(**overrides), Room("Alfa Romeo", 10, 2025), code="VIN1")
    assert any(p.startswith(problem) for p in problems), problems


# The REST publisher's HTTP client.


async def test_http_client_keeps_the_connection_and_reads_both_body_framings():
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            await reader.readexactly(length)
            if len(connections) == 1 and head.startswith(b"POST /chunked"):
                writer.write(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
                writer.write(b'4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n')
            else:
                writer.write(b'HTTP/1.1 429 Too Many Requests\r\nContent-Length: 15\r\n\r\n{"code":"slow"}')
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}", headers={"Authorization": "Token x"})
    try:
        first = await client.request("POST", "/chunked", {"code": "A"})
        second = await client.request("POST", "/plain", {"code": "B"})
    finally:
        await client.close()
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()
    assert (first.status, first.json()) == (201, {"a": 1})
    assert (second.status, second.json()) == (429, {"code": "slow"})
    assert len(connections) == 1


def test_tools_pick_their_rooms_among_the_months_that_open(settings):
    """From next month back two years: the smoke and token load test never open year 2099 again."""
    from datetime import date

    from inventory.periods import openable_months_newest_first

    months = openable_months_newest_first(date(2026, 12, 2))
    assert months[:3] == [(1, 2027), (12, 2026), (11, 2026)]
    assert months[-1] == (12, 2024) and len(months) == 26
    assert (10, 2025) in months  # protocol v1's example room
    settings.INVENTORY_OPEN_MONTHS_BACK, settings.INVENTORY_OPEN_MONTHS_AHEAD = 0, 0
    assert openable_months_newest_first(date(2026, 12, 2)) == [(12, 2026)]


def test_the_smoke_tries_the_months_it_is_given_newest_first():
    from tools.loadtest.shapes import Room
    from tools.loadtest.smoke import SmokeRun, SmokeSettings

    months = ((1, 2027), (12, 2026), (11, 2026))
    run = SmokeRun(SmokeSettings("http://h", "ws://h", "t", "Alfa Romeo", months=months), lambda *a: None)
    assert run._candidates(None) == list(months)
    assert run._candidates(Room("Alfa Romeo", 1, 2027)) == [(12, 2026), (11, 2026)]
    chosen = SmokeSettings("http://h", "ws://h", "t", "Alfa Romeo", month=10, year=2025, months=months)
    assert SmokeRun(chosen, lambda *a: None)._candidates(None) == [(10, 2025)]


# Join chatter, counted by type.


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('{"type":"user_joined","data":{"userId":"7"}}', "user_joined"),
        ('{"type":"user_left","data":{}}', "user_left"),
        ('{"type":"presence","data":{"users":[]}}', None),  # parsed, and counted, the slow way
        ('{"data":{"userId":"7"},"type":"user_left"}', "user_left"),  # wherever `type` stands
        ('{"type":"scan_added","data":{"scanData":{"code":"\\"type\\":\\"user_left\\""}}}', None),
        ('{"type":"user_', None),
    ],
)
def test_join_and_leave_chatter_is_recognised_without_parsing(text, kind):
    assert chatter_type(text) == kind


async def test_a_client_counts_every_message_it_receives_by_type():
    settings = plan.RunSettings("r", "http://h", "ws://h", "ws", 1.0, 1.0, 1)
    sink = Sink()
    room = RoomState(plan.RoomPlan(0, "A", 1, 2027, ("t",)))
    client = RoomClient(room, 0, "t", settings, sink)
    client._ready = asyncio.get_running_loop().create_future()  # as while it waits to get in
    for text in (
        '{"type":"user_joined","data":{}}',
        '{"type": "user_joined", "data": {}}',
        '{"data":{"users":[]},"type":"presence"}',
        '{"type":"user_left","data":{}}',
    ):
        client._on_message(text)
    assert sink.messages == {"user_joined": 2, "presence": 1, "user_left": 1}
    assert client._ready.result() is True


# REST in a closed loop.


async def test_a_closed_loop_posts_each_scan_once_the_last_is_answered_until_the_duration_ends():
    seen: list[int] = []
    in_flight = 0

    async def handle(reader, writer):
        nonlocal in_flight
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the publisher closed its connection
                writer.close()
                return
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            in_flight += 1
            seen.append(in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # One scan a second for half a second would be one scan: a closed loop ignores the rate.
    settings = plan.RunSettings(
        "r", f"http://127.0.0.1:{port}", "ws://h", "rest", 1.0, 0.5, 1, closed_loop=True
    )
    sink = Sink()
    room = RoomState(plan.RoomPlan(0, "A", 1, 2027, ("t",)))
    room.publisher = RoomClient(room, 0, "t", settings, sink)
    room.publisher.accepted = True
    try:
        await publish_room(room, settings, asyncio.get_running_loop().time(), sink)
    finally:
        server.close()
        await server.wait_closed()
    assert sink.sent > 1
    assert sink.answered == sink.sent == len(seen) == len(room.stored_at)
    assert set(seen) == {1}  # never a second request before the first was answered


def test_a_closed_loop_is_refused_over_websockets():
    with pytest.raises(CommandError, match="--via rest"):
        call_command("ws_loadtest", "--closed-loop")


def test_prefill_is_refused_with_a_token():
    with pytest.raises(CommandError, match="not with --token"):
        call_command("ws_loadtest", "--prefill", "10", "--token", "x")


# Inventories filled before the run.


@pytest.mark.django_db
def test_a_prefilled_inventory_is_what_the_services_would_have_left_and_is_removed_after():
    from inventory import services
    from inventory.models import Inventory, InventoryEvent, Scan
    from inventory.reconciliation.selectors import PROGRESS_FIELDS, progress_recount
    from tools.loadtest.accounts import accounts_create
    from tools.loadtest.prefill import inventories_prefill

    accounts = accounts_create(run_id="pf0001", rooms=2, clients=3)
    inventories_prefill(accounts=accounts, scans_per_room=30)

    inventories = Inventory.objects.filter(agency_id__in=accounts.agency_ids)
    assert inventories.count() == 2
    for inventory in inventories:
        assert inventory.scans.count() == 30
        counters = {field: getattr(inventory, field) for field in PROGRESS_FIELDS.values()}
        assert counters == progress_recount(inventory.pk)
        assert inventory.progress_counted == 30
        assert inventory.last_seq == 30
        events = list(inventory.events.order_by("seq"))
        assert [event.seq for event in events] == list(range(1, 31))
        assert {event.type for event in events} == {InventoryEvent.Type.SCAN_ADDED}
        assert events[-1].facts["progress"]["counted"] == 30
    # The next scan follows on: seq 31, the 31st counted; prefilled scans are not the run's.
    inventory = inventories.select_related("agency").first()
    user = inventory.scans.first().scanned_by
    services.scan_record(inventory=inventory, user=user, code="LT-pf0001-000-00000")
    inventory.refresh_from_db()
    assert (inventory.last_seq, inventory.progress_counted) == (31, 31)
    assert sum(len(ids) for ids in accounts.stored_scans().values()) == 1

    accounts.remove()
    assert not Scan.objects.filter(inventory__agency_id__in=accounts.agency_ids).exists()
    assert not Inventory.objects.filter(agency_id__in=accounts.agency_ids).exists()


# Handshakes dropped unanswered (daphne drops one the application has not accepted in 5 s).


async def dropping_first_handshakes(drops: int):
    """A WebSocket server that closes the first `drops` connections unanswered, then greets with presence."""
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        if len(connections) <= drops:
            writer.close()
            return
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        presence = b'{"type":"presence","data":{"users":[]}}'
        writer.write(bytes([0x81, len(presence)]) + presence)
        await writer.drain()
        await reader.read(1)  # the client's close frame
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


@pytest.mark.parametrize(("retries", "accepted"), [(1, True), (0, False)])
async def test_a_handshake_dropped_unanswered_is_tried_again_when_asked(retries, accepted):
    server, connections = await dropping_first_handshakes(1)
    port = server.sockets[0].getsockname()[1]
    settings = plan.RunSettings(
        "r",
        f"http://127.0.0.1:{port}",
        f"ws://127.0.0.1:{port}/ws",
        "ws",
        1.0,
        1.0,
        1,
        connect_retries=retries,
    )
    sink = Sink()
    client = RoomClient(RoomState(plan.RoomPlan(0, "A", 1, 2027, ("t",))), 0, "t", settings, sink)
    try:
        await client.open(asyncio.Semaphore(1))
        await client.close()
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()
    assert client.accepted is accepted
    assert (sink.attempted, sink.retries, len(connections)) == (1, retries, 1 + retries)
    if not accepted:
        assert client.refusal.startswith("InvalidMessage")
