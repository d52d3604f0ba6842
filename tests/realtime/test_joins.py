"""A bound on the sockets joining at once per process (realtime.joins): the next wait, then are refused."""

import asyncio

import pytest

from realtime import joining, joins, protocol

from .helpers import connect_raw, joined, room_path, token_of

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_past_the_joins_in_progress_a_socket_waits_then_is_told_to_come_back(
    ana, luis, settings, monkeypatch
):
    settings.REALTIME = {**settings.REALTIME, "MAX_JOINS_IN_PROGRESS": 2, "JOIN_WAIT_MS": 300}
    held = asyncio.Event()
    open_room = joining._open_room

    async def slow_open_room(*args):
        await held.wait()  # a join stuck on the database, as in a reconnect storm
        return await open_room(*args)

    monkeypatch.setattr(joining, "_open_room", slow_open_room)
    first, _ = await connect_raw(room_path(), token=await token_of(ana))
    second, _ = await connect_raw(room_path(), token=await token_of(luis))
    assert joins.in_progress() == 2

    loop = asyncio.get_running_loop()
    started = loop.time()
    refused, connected = await connect_raw(room_path(), token=await token_of(ana))
    assert connected
    error = (await refused.receive(timeout=2))["data"]
    assert await refused.closed_with(timeout=1) == protocol.CLOSE_UNAVAILABLE == 4503
    # Answered once its wait for a place ran out, not after the joins in progress.
    assert 0.3 <= loop.time() - started < 1.5
    assert error["code"] == "unavailable"
    assert 1 <= error["retryAfter"] <= joins.RETRY_AFTER_MAX_SECONDS
    assert f"reintenta en {error['retryAfter']} s" in error["message"]

    held.set()  # the joins in progress finish, and their places go to the next
    for client in (first, second):
        assert (await client.receive())["type"] == "presence"
    assert joins.in_progress() == 0
    async with joined(ana):
        pass
    for client in (first, second):
        await client.ws.disconnect()
    assert joins.in_progress() == 0


async def test_the_refusal_speaks_english_when_asked(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_JOINS_IN_PROGRESS": 1, "JOIN_WAIT_MS": 0}
    place = joins.JoinPlace()  # one join in progress
    try:
        client, _ = await connect_raw(
            room_path(), token=await token_of(ana), headers=[(b"accept-language", b"en")]
        )
        error = (await client.receive())["data"]
        assert await client.closed_with() == 4503
    finally:
        place.release()
    assert (
        error["message"]
        == f"The server is handling many connections at once; retry in {error['retryAfter']} s."
    )


async def test_a_burst_past_the_bound_waits_its_turn_and_every_socket_joins(ana, luis, settings, monkeypatch):
    # A room's phones all at once (or a deploy's sockets): queued for a place, none refused.
    settings.REALTIME = {**settings.REALTIME, "MAX_JOINS_IN_PROGRESS": 2, "JOIN_WAIT_MS": 5000}
    held = asyncio.Event()
    open_room = joining._open_room

    async def slow_open_room(*args):
        await held.wait()
        return await open_room(*args)

    monkeypatch.setattr(joining, "_open_room", slow_open_room)
    tokens = [await token_of(user) for user in (ana, luis, ana, luis, ana)]
    connecting = [asyncio.ensure_future(connect_raw(room_path(), token=token)) for token in tokens]
    for _ in range(100):
        await asyncio.sleep(0.01)
        if joins.in_progress() == 2 and joins.waiting() == 3:
            break
    assert (joins.in_progress(), joins.waiting()) == (2, 3)
    held.set()
    clients = [client for client, connected in await asyncio.gather(*connecting) if connected]
    assert len(clients) == 5
    for client in clients:
        assert (await client.receive_type("presence"))["type"] == "presence"
    assert (joins.in_progress(), joins.waiting()) == (0, 0)
    for client in clients:
        await client.ws.disconnect()


async def test_a_socket_that_leaves_while_it_waits_gives_no_place_away_twice(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_JOINS_IN_PROGRESS": 1}
    first = await joins.take_place(1, 0)
    waiting = asyncio.ensure_future(joins.take_place(1, 5))
    await asyncio.sleep(0.01)
    assert joins.waiting() == 1
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    first.release()
    assert (joins.in_progress(), joins.waiting()) == (0, 0)
    again = await joins.take_place(1, 0)
    assert again is not None and joins.in_progress() == 1
    again.release()
    assert joins.in_progress() == 0
