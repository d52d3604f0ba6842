"""Relay once per process (realtime.fanout): order, gap fill, holds, one subscription, loss seen."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from inventory import services
from inventory.access import Room
from realtime import broadcast, replay
from realtime.fanout import room_stream
from realtime.redis_client import get_redis, key
from realtime.wire import PRESENCE_CHATTER

from .helpers import joined

pytestmark = [pytest.mark.django_db(transaction=True)]

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL: a real Redis")


def db(function, /, *args, **kwargs):
    return database_sync_to_async(function)(*args, **kwargs)


async def open_inventory(alfa):
    return await db(services.inventory_get_or_open, room=Room(alfa, 10, 2025))


async def live_seqs(client, count: int) -> list[tuple[int, str]]:
    """(seq, code) of the next `count` scan events, skipping presence chatter."""
    return [
        (message["data"]["seq"], message["data"]["scanData"]["code"])
        for message in await client.receive_types(count)
    ]


async def test_a_socket_fills_a_missed_event_from_the_log_before_the_next(ana, luis, alfa, monkeypatch):
    inventory = await open_inventory(alfa)
    async with joined(ana) as client:
        real_publish = broadcast.publish
        monkeypatch.setattr("realtime.broadcast.publish", lambda *a, **kw: None)  # A1's broadcast is lost
        await db(services.scan_record, inventory=inventory, user=luis, code="A1")
        monkeypatch.setattr("realtime.broadcast.publish", real_publish)
        await db(services.scan_record, inventory=inventory, user=luis, code="A2")
        assert await live_seqs(client, 2) == [(1, "A1"), (2, "A2")]
        await db(services.scan_record, inventory=inventory, user=luis, code="A3")
        assert await live_seqs(client, 1) == [(3, "A3")]
        assert await client.nothing(0.3, ignore=PRESENCE_CHATTER)


async def test_events_relayed_during_a_resume_follow_its_backlog_in_order(ana, luis, alfa, monkeypatch):
    inventory = await open_inventory(alfa)
    for code in ("A1", "A2"):
        await db(services.scan_record, inventory=inventory, user=luis, code=code)
    events_after = replay.events_after

    @database_sync_to_async
    def slow_events_after(inventory, seq, until=None):
        # While this socket reads its backlog, someone else scans: A3 is relayed mid-resume.
        found = events_after.func(inventory, seq, until)
        services.scan_record(inventory=inventory, user=luis, code="A3")
        return found

    async with joined(ana) as client:
        monkeypatch.setattr(replay, "events_after", slow_events_after)
        await client.send("resume", {"since": 0})
        assert await live_seqs(client, 3) == [(1, "A1"), (2, "A2"), (3, "A3")]
        assert await client.nothing(0.3, ignore=PRESENCE_CHATTER)


async def test_every_socket_of_the_room_gets_each_event_once_in_order(ana, luis, alfa):
    inventory = await open_inventory(alfa)
    async with joined(ana) as first, joined(ana) as second, joined(luis) as third:
        for i in range(20):
            await db(services.scan_record, inventory=inventory, user=luis, code=f"C{i}")
        expected = [(i + 1, f"C{i}") for i in range(20)]
        for client in (first, second, third):
            assert await live_seqs(client, 20) == expected


@needs_redis
async def test_one_subscription_per_process_whatever_the_sockets_in_the_room(ana, luis, alfa, settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_INTERVAL_MS": 200}
    inventory = await open_inventory(alfa)
    channel = key("live", room_stream(inventory.pk))
    redis = get_redis()
    async with joined(ana), joined(ana), joined(luis):
        assert await redis.pubsub_numsub(channel) == [(channel, 1)]
    # Once the room is empty here, the next heartbeat stops hearing it.
    for _ in range(50):
        if await redis.pubsub_numsub(channel) == [(channel, 0)]:
            break
        await asyncio.sleep(0.1)
    assert await redis.pubsub_numsub(channel) == [(channel, 0)]


@needs_redis
async def test_sockets_are_told_at_once_when_the_subscription_breaks(ana, alfa):
    await open_inventory(alfa)
    async with joined(ana) as client:
        redis = get_redis()
        db_number = str(redis.connection_pool.connection_kwargs.get("db", 0))
        # This process's subscriptions (earlier tests' event loops left theirs behind: kill all).
        ours = [
            c
            for c in await redis.client_list(_type="pubsub")
            if c.get("name") == key("live-relay") and c.get("db") == db_number
        ]
        assert ours
        for connection in ours:
            await redis.client_kill_filter(_id=connection["id"])
        error = await client.receive_type("error")
        assert error["data"]["code"] == "unavailable"
        assert await client.closed_with() == 4503
    # The room works again for the next socket: a new subscription replaces the broken one.
    async with joined(ana) as client:
        await client.send("ping", {"timestamp": "back"})
        assert (await client.receive_type("pong"))["data"]["timestamp"] == "back"


class BusyMember:
    """A socket whose presence refresh takes 10 ms: a round trip, and its turn on a busy event loop."""

    def __init__(self, clock, refreshed: list):
        self.clock = clock
        self.refreshed = refreshed  # (member, when) of every refresh

    async def relay(self, event):
        pass

    def relay_lost(self):
        pass

    async def heartbeat(self):
        self.refreshed.append((self, self.clock.monotonic()))
        await self.clock.sleep(0.010)


async def test_a_heartbeat_refreshes_every_member_before_its_entry_expires_on_a_busy_process(
    settings, fake_clock
):
    """500 sockets whose refreshes take 5 s one after another, on a 2 s heartbeat (entries live 4 s):
    each is refreshed within the two heartbeats its entry lives, and many refresh side by side."""
    from realtime import fanout as fanout_module

    settings.REDIS_URL = None
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_INTERVAL_MS": 2000}
    refreshed: list = []
    fanout = fanout_module.Fanout()
    members = [BusyMember(fake_clock, refreshed) for _ in range(500)]
    for member in members:
        await fanout.join(room_stream(1), member)
    try:
        started = fake_clock.monotonic()
        while fake_clock.monotonic() < started + 20:
            await fake_clock.run_for(0.05)
    finally:
        await fanout.aclose()

    times: dict = {}
    for member, when in refreshed:
        times.setdefault(member, []).append(when)
    assert set(times) == set(members)
    ttl = 2 * 2.0
    for member in members:
        beats = [started] + times[member]
        assert len(beats) >= 4, len(beats)
        assert max(later - earlier for earlier, later in zip(beats, beats[1:], strict=False)) < ttl
    # Side by side: one after another, a beat's refreshes would take 5 s, beats would come every
    # 7 s and every entry would expire between two.
    assert len(times[members[0]]) >= 6


class GoneMember(BusyMember):
    """A socket whose server says it is gone when sent to (ASGI: an OSError, uvicorn's ClientDisconnected)."""

    async def relay(self, event):
        from uvicorn.protocols.utils import ClientDisconnected

        raise ClientDisconnected()


async def test_a_relay_to_a_socket_that_is_gone_is_not_an_error_and_the_others_still_get_it(
    settings, fake_clock, caplog
):
    from realtime import fanout as fanout_module

    settings.REDIS_URL = None
    got = []

    class Listening(BusyMember):
        async def relay(self, event):
            got.append(event["seq"])

    fanout = fanout_module.Fanout()
    for member in (GoneMember(fake_clock, []), Listening(fake_clock, [])):
        await fanout.join(room_stream(1), member)
    try:
        with caplog.at_level("DEBUG", logger="realtime.fanout"):
            await fanout.deliver(room_stream(1), {"type": "room.event", "seq": 1, "text": "{}"})
    finally:
        await fanout.aclose()
    assert got == [1]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert any("closed socket" in r.getMessage() for r in caplog.records)
