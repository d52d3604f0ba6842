"""A socket's place in the room's presence: realtime.membership, with its null variant."""

import asyncio
import shutil

import pytest
from channels.db import database_sync_to_async

from inventory import services
from inventory.access import Room
from realtime import broadcast, clock
from realtime.conf import realtime_settings
from realtime.membership import NullMembership, RoomMembership
from realtime.presence import USER_LIMIT, Connection, get_presence
from tests.conftest import need
from tests.faults import RedisServer
from tests.servers import free_port

from .helpers import joined

pytestmark = [pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def open_inventory(agency):
    return services.inventory_get_or_open(room=Room(agency, 10, 2025))


def connection(name="ana", user_id="1"):
    return Connection(f"conn-{name}", user_id, name.title(), clock.now(), "this-instance")


def ghost(connection_id):
    return Connection(connection_id, "99", "Ghost", clock.now(), "this-instance")


async def listed(inventory):
    return sorted(conn.connection_id for conn in await get_presence().connections(inventory.pk))


async def test_a_membership_lists_its_connection_until_it_leaves_once(alfa):
    inventory = await open_inventory(alfa)
    membership, admission = await RoomMembership.join(inventory, connection(), limit=10, user_limit=0)
    assert type(membership) is RoomMembership and membership.listed
    assert admission.joined and admission.first
    assert await listed(inventory) == ["conn-ana"]
    assert [user["userName"] for user in await membership.users()] == ["Ana"]
    await membership.heartbeat()
    assert await listed(inventory) == ["conn-ana"]
    await membership.leave(grace=False)
    await membership.leave(grace=False)  # a second leave changes nothing
    assert await listed(inventory) == []


async def test_the_room_s_limits_refuse_a_membership(alfa):
    inventory = await open_inventory(alfa)
    first, _ = await RoomMembership.join(inventory, connection("a", "1"), limit=1, user_limit=0)
    refused, admission = await RoomMembership.join(inventory, connection("b", "2"), limit=1, user_limit=0)
    assert not admission.joined and refused.left
    second, admission = await RoomMembership.join(inventory, connection("a2", "1"), limit=5, user_limit=1)
    assert admission.refused == USER_LIMIT
    await refused.leave()  # refused: nothing to leave
    assert await listed(inventory) == ["conn-a"]
    await first.abandon()
    assert await listed(inventory) == []


async def test_the_last_connection_s_departure_is_announced_after_the_grace_period(ana, settings, fake_clock):
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_GRACE_MS": 5000}
    async with joined(ana) as client:
        inventory = await open_inventory(await _alfa())
        membership, _ = await RoomMembership.join(inventory, ghost("ghost"), limit=10, user_limit=0)
        await membership.leave()
        await fake_clock.run_for(4.9)
        assert await client.nothing(0.1, ignore=("user_joined", "presence"))
        await fake_clock.run_for(0.2)
        left = await client.receive_type("user_left", timeout=2)
        assert (left["data"]["userId"], left["data"]["userName"]) == ("99", "Ghost")


async def test_a_return_within_the_grace_period_is_no_news(ana, settings, fake_clock):
    settings.REALTIME = {**settings.REALTIME, "PRESENCE_GRACE_MS": 5000}
    async with joined(ana) as client:
        inventory = await open_inventory(await _alfa())
        membership, _ = await RoomMembership.join(inventory, ghost("ghost"), limit=10, user_limit=0)
        await membership.leave()
        back, admission = await RoomMembership.join(inventory, ghost("ghost2"), limit=10, user_limit=0)
        assert admission.joined and admission.returning
        await fake_clock.run_for(6)
        assert await client.nothing(0.2, ignore=("user_joined", "presence"))
        await back.leave(grace=False)
        assert (await client.receive_type("user_left"))["data"]["userId"] == "99"


async def test_a_null_membership_when_the_presence_store_is_down(alfa, settings):
    inventory = await open_inventory(alfa)
    # A Redis that is not there: nothing listens on this port.
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    membership, admission = await RoomMembership.join(inventory, connection(), limit=10, user_limit=0)
    assert type(membership) is NullMembership and not membership.listed
    assert admission.joined  # the user counts, unlisted
    assert await membership.users() == []
    await membership.heartbeat()
    await membership.announce_departures((connection("gone", "2"),))
    await membership.leave()
    await membership.abandon()
    assert membership.left


@database_sync_to_async
def _alfa():
    from inventory.models import Agency

    return Agency.objects.get(name="Alfa Romeo")


async def test_a_heartbeat_announces_users_of_a_vanished_instance(alfa, luis, fake_clock):
    inventory = await open_inventory(alfa)
    vanished = Connection("vanished", "99", "Ghost", fake_clock.now(), "dead-instance")
    assert (await get_presence().join(inventory.pk, vanished, limit=50)).joined
    membership, _ = await RoomMembership.join(inventory, connection("me", "98"), limit=50, user_limit=0)
    async with joined(luis) as client:
        # Past the TTL, every entry expires; the heartbeat refreshes its own and announces the others.
        fake_clock.advance(realtime_settings.presence_ttl_seconds + 1)
        await membership.heartbeat()
        left = []
        while "99" not in left:
            message = await client.receive()
            if message["type"] == "user_left":
                left.append(message["data"]["userId"])
        assert "99" in left
    await membership.leave(grace=False)


@pytest.fixture
def own_redis(settings):
    """A redis-server of the test's own, restarted at will (no persistence: a restart loses every key)."""
    need(shutil.which("redis-server") is not None, "needs redis-server on PATH")
    with RedisServer() as server:
        settings.REDIS_URL = server.url
        yield server


async def restart(server) -> None:
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)


async def test_a_socket_that_joined_while_redis_was_down_is_listed_when_it_is_back(
    alfa, own_redis, monkeypatch
):
    inventory = await open_inventory(alfa)
    told = []
    monkeypatch.setattr(broadcast, "apublish", lambda room, message: told.append(message["type"]) or _done())
    await asyncio.to_thread(own_redis.stop)
    membership, admission = await RoomMembership.join(inventory, connection(), limit=10, user_limit=2)
    assert admission.joined and not membership.listed
    await membership.heartbeat()  # still down: stays unlisted
    await asyncio.to_thread(own_redis.start)
    refused = await membership.heartbeat()
    assert await listed(inventory) == ["conn-ana"]
    assert membership.listed and not refused
    await membership.leave(grace=False)
    assert await listed(inventory) == []
    assert told == ["user_left"]  # taking its place again was no news; leaving is


async def test_a_redis_restart_puts_open_sockets_back_within_the_limits_quietly(alfa, own_redis, monkeypatch):
    inventory = await open_inventory(alfa)
    told = []
    monkeypatch.setattr(broadcast, "apublish", lambda room, message: told.append(message["type"]) or _done())
    ana, _ = await RoomMembership.join(inventory, connection("ana", "1"), limit=2, user_limit=1)
    luis, _ = await RoomMembership.join(inventory, connection("luis", "2"), limit=2, user_limit=1)
    await restart(own_redis)
    assert await listed(inventory) == []  # every key is gone
    # Meanwhile Eva joined while Redis was down: unlisted, within no limit.
    await asyncio.to_thread(own_redis.stop)
    eva, _ = await RoomMembership.join(inventory, connection("eva", "3"), limit=2, user_limit=1)
    await asyncio.to_thread(own_redis.start)
    refused = [await ana.heartbeat(), await eva.heartbeat(), await luis.heartbeat()]
    # The room holds 2: the last to come back is refused.
    assert await listed(inventory) == ["conn-ana", "conn-eva"]
    assert refused == ["", "", "room_full"] and luis.left
    await ana.heartbeat()
    assert await listed(inventory) == ["conn-ana", "conn-eva"]
    assert told == []  # nobody joined or left, as the room saw it


async def _done():
    return None


async def test_leaving_waits_at_most_a_second_for_a_redis_that_does_not_answer(alfa, own_redis, fake_clock):
    inventory = await open_inventory(alfa)
    leaving, _ = await RoomMembership.join(inventory, connection("ana", "1"), limit=10, user_limit=0)
    abandoning, _ = await RoomMembership.join(inventory, connection("luis", "2"), limit=10, user_limit=0)
    paused = asyncio.create_task(asyncio.to_thread(own_redis.pause, 4))
    await asyncio.sleep(0.3)  # DEBUG SLEEP has begun: connections stay open, nothing answers
    loop = asyncio.get_running_loop()
    started = loop.time()
    await leaving.leave(grace=False)
    await abandoning.abandon()
    took = loop.time() - started
    await paused
    assert took < 2.5 and leaving.left and abandoning.left
    # Left behind, the entries expire: the next join hands them over (to be announced as gone).
    fake_clock.advance(realtime_settings.presence_ttl_seconds + 1)
    _, admission = await RoomMembership.join(inventory, connection("eva", "3"), limit=10, user_limit=0)
    assert sorted(conn.connection_id for conn in admission.expired) == ["conn-ana", "conn-luis"]


async def test_a_socket_the_room_s_limit_refuses_on_its_heartbeat_is_told_and_closed(
    ana, luis, settings, monkeypatch
):
    from realtime import presence
    from realtime.fanout import get_fanout, room_stream

    settings.REALTIME = {**settings.REALTIME, "MAX_CONNECTIONS_PER_ROOM": 1}
    store = get_presence()
    join = store.join

    async def store_down_once(*args, **kwargs):
        monkeypatch.setattr(store, "join", join)
        raise ConnectionError("Connection refused")  # the store was down for this join only

    monkeypatch.setattr(store, "join", store_down_once)
    async with joined(ana) as client:
        inventory = await open_inventory(await _alfa())
        (socket,) = get_fanout().members(room_stream(inventory.pk))
        assert not socket.membership.listed
        # Meanwhile Luis took the room's one place; Ana's heartbeat finds the room full.
        assert (
            await presence.get_presence().join(inventory.pk, connection("luis", str(luis.pk)), limit=1)
        ).joined
        await socket.heartbeat()
        error = await client.receive_type("error")
        assert error["data"]["code"] == "room_full"
        assert await client.closed_with() == 4429
    assert await listed(inventory) == ["conn-luis"]
