"""Presence timing on the fake clock: expiry after two heartbeats, refresh, the departure grace period.

Runs on the in-memory store, or on Redis when REDIS_URL is set (the same behaviour either way).
"""

import pytest

from realtime.presence import ROOM_FULL, Connection, get_presence

ROOM = 4242
HEARTBEAT_MS = 200  # a TTL of two heartbeats: 0.4 s


@pytest.fixture(autouse=True)
def short_heartbeat(settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_INTERVAL_MS": HEARTBEAT_MS}


def connection(name: str, user_id: str, clock) -> Connection:
    return Connection(name, user_id, name.title(), clock.now(), "this-instance")


async def names() -> list[str]:
    return sorted(conn.connection_id for conn in await get_presence().connections(ROOM))


async def test_a_vanished_connection_expires_after_two_heartbeats(fake_clock):
    presence = get_presence()
    assert (await presence.join(ROOM, connection("ghost", "99", fake_clock), limit=50)).joined
    fake_clock.advance(0.39)
    assert await names() == ["ghost"]
    fake_clock.advance(0.02)
    assert await names() == []
    assert ROOM not in await presence.rooms()


async def test_a_refreshed_connection_stays_past_the_ttl(fake_clock):
    presence = get_presence()
    ana = connection("ana-1", "1", fake_clock)
    await presence.join(ROOM, ana, limit=50)
    for _ in range(5):  # a heartbeat each 0.2 s, for 1 s: well past one TTL
        fake_clock.advance(0.2)
        assert (await presence.refresh(ROOM, ana)).expired == ()
    assert await names() == ["ana-1"]


async def test_the_next_join_hands_over_the_expired_entries_once(fake_clock):
    presence = get_presence()
    await presence.join(ROOM, connection("ghost", "99", fake_clock), limit=50)
    fake_clock.advance(0.5)
    first = await presence.join(ROOM, connection("ana-1", "1", fake_clock), limit=50)
    assert [conn.connection_id for conn in first.expired] == ["ghost"]
    again = await presence.join(ROOM, connection("luis-1", "2", fake_clock), limit=50)
    assert again.expired == ()


async def test_an_expired_entry_frees_its_place_in_a_full_room(fake_clock):
    presence = get_presence()
    await presence.join(ROOM, connection("ghost", "99", fake_clock), limit=1)
    refused = await presence.join(ROOM, connection("ana-1", "1", fake_clock), limit=1)
    assert (refused.joined, refused.refused) == (False, ROOM_FULL)
    fake_clock.advance(0.41)
    assert (await presence.join(ROOM, connection("ana-1", "1", fake_clock), limit=1)).joined


async def test_a_user_back_within_the_grace_period_is_returning_not_new(fake_clock):
    presence = get_presence()
    await presence.join(ROOM, connection("luis-1", "2", fake_clock), limit=50)
    grace_until = fake_clock.now() + 5
    assert await presence.leave(ROOM, "luis-1", user_id="2", grace_until=grace_until)
    fake_clock.advance(4.9)
    back = await presence.join(ROOM, connection("luis-2", "2", fake_clock), limit=50)
    assert back.returning and not back.first
    assert not await presence.settle(ROOM, "2", grace_until)  # never told the room he left


async def test_a_user_gone_past_the_grace_period_is_settled_as_gone_once(fake_clock):
    presence = get_presence()
    await presence.join(ROOM, connection("luis-1", "2", fake_clock), limit=50)
    grace_until = fake_clock.now() + 5
    assert await presence.leave(ROOM, "luis-1", user_id="2", grace_until=grace_until)
    fake_clock.advance(5.01)
    assert await presence.settle(ROOM, "2", grace_until)
    assert not await presence.settle(ROOM, "2", grace_until)
    back = await presence.join(ROOM, connection("luis-2", "2", fake_clock), limit=50)
    assert back.first  # a new arrival


async def test_the_user_summary_says_since_when_on_the_clock(fake_clock):
    from realtime.presence import summarize_users

    first = connection("ana-1", "1", fake_clock)
    fake_clock.advance(60)
    second = connection("ana-2", "1", fake_clock)
    (ana,) = summarize_users([second, first])
    assert ana["connections"] == 2
    assert ana["since"] == summarize_users([first])[0]["since"]
