"""Rate-limit windows on the fake clock: a calendar minute each, shared by a user's connections."""

import pytest

from realtime import ratelimit


@pytest.fixture(autouse=True)
def three_a_minute(settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 3, "CONNECT_RATE_PER_USER": 2}


@pytest.fixture
def minute_start(fake_clock):
    """The fake clock at 10 s into a calendar minute."""
    fake_clock.advance(-(fake_clock.now() % 60) + 10)
    return fake_clock


async def test_the_budget_ends_with_the_minute_and_says_how_long_until_then(minute_start):
    counts = [await ratelimit.count_message("u1", "scan_added") for _ in range(4)]
    assert [count.allowed for count in counts] == [True, True, True, False]
    assert counts[-1].retry_after == 50
    minute_start.advance(49.5)
    assert not (await ratelimit.count_message("u1", "scan_added")).allowed
    minute_start.advance(0.5)  # the next minute: a new budget
    assert (await ratelimit.count_message("u1", "scan_added")).allowed


async def test_each_message_type_and_user_has_its_own_budget(minute_start):
    for _ in range(3):
        await ratelimit.count_message("u1", "scan_added")
    assert not await ratelimit.allow("u1", "scan_added")
    assert await ratelimit.allow("u1", "ping")
    assert await ratelimit.allow("u2", "scan_added")


async def test_connects_have_their_own_budget_per_minute(minute_start):
    assert [(await ratelimit.count_connect("u1")).allowed for _ in range(3)] == [True, True, False]
    minute_start.advance(50)
    assert (await ratelimit.count_connect("u1")).allowed
