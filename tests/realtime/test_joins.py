"""A bound on the sockets joining at once per process (realtime.joins): the rest refused at once."""

import asyncio

import pytest

from realtime import consumers, joins, protocol

from .helpers import connect_raw, joined, room_path, token_of

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_past_the_joins_in_progress_a_socket_is_told_at_once_to_come_back(
    ana, luis, settings, monkeypatch
):
    settings.REALTIME = {**settings.REALTIME, "MAX_JOINS_IN_PROGRESS": 2}
    held = asyncio.Event()
    open_room = consumers._open_room

    async def slow_open_room(*args):
        await held.wait()  # a join stuck on the database, as in a reconnect storm
        return await open_room(*args)

    monkeypatch.setattr(consumers, "_open_room", slow_open_room)
    first, _ = await connect_raw(room_path(), token=await token_of(ana))
    second, _ = await connect_raw(room_path(), token=await token_of(luis))
    assert joins.in_progress() == 2

    loop = asyncio.get_running_loop()
    started = loop.time()
    refused, connected = await connect_raw(room_path(), token=await token_of(ana))
    assert connected
    error = (await refused.receive(timeout=1))["data"]
    assert await refused.closed_with(timeout=1) == protocol.CLOSE_UNAVAILABLE == 4503
    assert loop.time() - started < 1  # answered without waiting for the joins in progress
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
    settings.REALTIME = {**settings.REALTIME, "MAX_JOINS_IN_PROGRESS": 1}
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
