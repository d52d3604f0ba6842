"""One member cannot take a room: per-user sockets, connects a minute, frames a minute, presence churn."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from inventory import services
from inventory.access import Room
from realtime import protocol
from realtime.wire import PRESENCE_CHATTER, check_server_message

from .helpers import connect_raw, joined, room_path, token_of

pytestmark = [pytest.mark.django_db(transaction=True)]


async def refusal(user, path=None) -> tuple[dict, int]:
    """Connect as `user` expecting a refusal: its error's data, and the close code."""
    client, connected = await connect_raw(path or room_path(), token=await token_of(user))
    assert connected
    error = await client.receive()
    assert error["type"] == "error", error
    return error["data"], await client.closed_with()


# Connections per user and room.


async def test_a_user_holds_at_most_five_sockets_in_a_room(ana, luis):
    async with joined(ana), joined(ana), joined(ana), joined(ana), joined(ana):
        error, close_code = await refusal(ana)
        assert error["code"] == "user_connection_limit"
        assert "5 conexiones" in error["message"]
        assert close_code == protocol.CLOSE_TOO_MANY == 4429
        # The room is not full: someone else gets in, and so does Ana in another room.
        async with joined(luis), joined(ana, room_path(agency="Peugeot Querétaro")):
            pass
    # Places free up when her sockets close.
    async with joined(ana):
        pass


async def test_the_per_user_limit_is_raised_by_its_setting(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_USER": 7}
    async with joined(ana), joined(ana), joined(ana), joined(ana), joined(ana), joined(ana), joined(ana):
        error, close_code = await refusal(ana)
        assert (error["code"], close_code) == ("user_connection_limit", 4429)
        assert "7 conexiones" in error["message"]


async def test_the_room_limit_still_says_room_full(ana, luis, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_ROOM": 2}
    async with joined(ana), joined(ana):
        error, close_code = await refusal(luis)
        assert (error["code"], close_code) == ("room_full", 4429)


# Connects per user and minute.


async def test_connects_past_the_rate_are_refused_until_the_minute_ends(ana, luis, settings):
    settings.REALTIME = {**settings.REALTIME, "CONNECT_RATE_PER_USER": 3}
    for _ in range(3):
        async with joined(ana):
            pass
    error, close_code = await refusal(ana)
    assert error["code"] == "connect_rate_limited"
    assert "3 por minuto" in error["message"]
    assert 1 <= error["retryAfter"] <= 60
    assert close_code == 4429
    # Somebody else's connects are their own.
    async with joined(luis):
        pass


async def test_connects_at_once_are_each_counted(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "CONNECT_RATE_PER_USER": 3, "MAX_CONNECTIONS_PER_USER": 10}
    token = await token_of(ana)
    clients = [
        client
        for client, _ in await asyncio.gather(*(connect_raw(room_path(), token=token) for _ in range(6)))
    ]
    try:
        firsts = [await client.receive() for client in clients]
        outcomes = sorted(first["data"].get("code", first["type"]) for first in firsts)
        assert outcomes == ["connect_rate_limited"] * 3 + ["presence"] * 3, outcomes
    finally:
        for client in clients:
            await client.ws.disconnect()


# Presence chatter is per user, not per connection.


async def arrival(client) -> str:
    """The name in the next `user_joined` of someone else (Ana's own comes after her greeting)."""
    while (message := await client.receive_type("user_joined"))["data"]["userName"] == "Ana García":
        pass
    return message["data"]["userName"]


async def test_a_reconnect_loop_is_not_broadcast_to_the_room(ana, luis, settings, fake_clock):
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_GRACE_MS": 1000}
    async with joined(ana) as ana_ws:
        async with joined(luis):
            assert await arrival(ana_ws) == "Luis Pérez"
        for _ in range(10):  # closes and comes back at once, again and again
            async with joined(luis):
                pass
            await fake_clock.run_for(0.05)
        # Not one user_joined or user_left while Luis kept coming back within the grace period.
        assert await ana_ws.nothing(0.3, ignore=("presence",))
        # Luis is gone for good: told once, after the grace period.
        await fake_clock.run_for(1.0)
        left = await ana_ws.receive_type("user_left", timeout=3)
        assert left["data"]["userName"] == "Luis Pérez"
        await fake_clock.run_for(1.2)
        assert await ana_ws.nothing(0.3, ignore=("presence",))
        # Back after the grace period: a new arrival.
        async with joined(luis):
            assert (await ana_ws.receive_type("user_joined"))["data"]["userName"] == "Luis Pérez"


async def test_presence_counts_every_connection_of_a_user(ana, luis):
    async with joined(luis), joined(luis), joined(ana) as ana_ws:
        await ana_ws.send("user_joined", {})
        presence = await ana_ws.receive_type("presence")
        counts = {user["userName"]: user["connections"] for user in presence["data"]["users"]}
        assert counts == {"Luis Pérez": 2, "Ana García": 1}


# Every frame counts toward the rate limit.


@pytest.mark.parametrize(
    "frame,code",
    [
        ("not json", "invalid_json"),
        ("[1]", "invalid_message"),
        ('{"type": "dance"}', "unknown_type"),
    ],
)
async def test_bad_frames_past_the_limit_get_one_rate_limited_then_the_close(ana, settings, frame, code):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 3}
    async with joined(ana) as client:
        for _ in range(3):
            await client.ws.send_to(text_data=frame)
            assert (await client.receive_type("error"))["data"]["code"] == code
        for _ in range(5):  # a flood: answered once, then the socket is closed
            await client.ws.send_to(text_data=frame)
        refused = await client.receive_type("error")
        assert refused["data"]["code"] == "rate_limited"
        assert refused["data"]["message"] == "Rate limit exceeded"
        assert await client.closed_with() == 4429


async def test_malformed_messages_of_a_known_type_count_toward_that_type(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 3}
    async with joined(ana) as client:
        for _ in range(3):
            await client.send("scan_added", [])
            assert (await client.receive_type("error"))["data"]["code"] == "invalid_data"
        await client.send("scan_added", {"scanData": {"code": "A1"}})
        refused = await client.receive_type("error")
        assert (refused["data"]["code"], refused["data"]["messageType"]) == ("rate_limited", "scan_added")
        assert refused["data"]["scanData"] == {"code": "A1"}
        assert await still_open(client)


async def still_open(client) -> bool:
    await client.send("ping", {"timestamp": "open"})
    return (await client.receive_type("pong"))["data"]["timestamp"] == "open"


async def test_bad_frames_have_their_own_budget(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 3}
    async with joined(ana) as client:
        for _ in range(3):
            await client.ws.send_to(text_data="not json")
            await client.receive_type("error")
        await client.send("ping", {"timestamp": "still"})
        assert (await client.receive_type("pong"))["data"]["timestamp"] == "still"


async def test_a_client_that_sends_ten_times_its_budget_is_closed(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 3}
    async with joined(ana) as client:
        for n in range(40):
            await client.send("ping", {"timestamp": str(n)})
        answers = []
        while True:
            output = await client.ws.receive_output(3)
            if output["type"] == "websocket.close":
                await client.ws.disconnect(output["code"])
                break
            message = protocol_message(output)
            if message["type"] not in PRESENCE_CHATTER:
                answers.append((message["type"], message["data"].get("code")))
        # Three pongs, a refusal for each of the next 27 (protocol v1's answer, each naming what it
        # refused), one last refusal at the 31st, then the close: 31 answers for 40 frames.
        assert answers == [("pong", None)] * 3 + [("error", "rate_limited")] * 28, answers
        assert output["code"] == 4429


def protocol_message(output) -> dict:
    return check_server_message(json.loads(output["text"]))


# A long backlog gets the snapshot.


async def record(alfa, user, codes) -> None:
    inventory = await database_sync_to_async(services.inventory_get_or_open)(room=Room(alfa, 10, 2025))
    for code in codes:
        await database_sync_to_async(services.scan_record)(inventory=inventory, user=user, code=code)


async def test_a_backlog_longer_than_the_replay_limit_gets_the_snapshot(ana, luis, alfa, settings):
    settings.REALTIME = {**settings.REALTIME, "REPLAY_MAX_EVENTS": 2}
    await record(alfa, luis, ["A1", "A2", "A3"])
    async with joined(ana, query="since=0") as client:
        snapshot = await client.receive_type("snapshot")
        assert snapshot["data"]["seq"] == 3
        assert sorted(scan["code"] for scan in snapshot["data"]["scans"]) == ["A1", "A2", "A3"]
        assert await client.nothing(0.3)
        # Two events behind: replayed one by one.
        await client.send("resume", {"since": 1})
        replayed = [await client.receive_type("scan_added") for _ in range(2)]
        assert [message["data"]["seq"] for message in replayed] == [2, 3]
        # Three behind again, by message: the snapshot.
        await client.send("resume", {"since": 0})
        assert (await client.receive_type("snapshot"))["data"]["seq"] == 3


async def test_the_default_replay_limit_replays_a_short_backlog(ana, luis, alfa):
    await record(alfa, luis, ["A1", "A2"])
    async with joined(ana, query="since=0") as client:
        replayed = [await client.receive_type("scan_added") for _ in range(2)]
        assert [message["data"]["seq"] for message in replayed] == [1, 2]


def test_the_limits_are_read_from_the_environment():
    from tests.test_settings import run_django

    show = (
        "from realtime.conf import realtime_settings as r; "
        "print(r.MAX_CONNECTIONS_PER_USER, r.CONNECT_RATE_PER_USER, r.PRESENCE_GRACE_MS, r.REPLAY_MAX_EVENTS)"
    )
    defaults = run_django(show, "inventory_site.settings.local")
    assert defaults.stdout.split() == ["5", "60", "5000", "500"], defaults.stderr
    raised = run_django(
        show,
        "inventory_site.settings.local",
        WEBSOCKET_MAX_CONNECTIONS_PER_USER="40",
        WEBSOCKET_CONNECT_RATE_PER_USER="600",
        WEBSOCKET_PRESENCE_GRACE_MS="0",
        WEBSOCKET_REPLAY_MAX_EVENTS="20",
    )
    assert raised.stdout.split() == ["40", "600", "0", "20"], raised.stderr
