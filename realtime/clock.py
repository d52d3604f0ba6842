"""The time realtime reads: the wall clock, a monotonic clock and sleep, substitutable in tests.

Presence, metrics and rate limits ask this module, not `time`, so that a test can put a fake clock in
place (`with clock.use(fake):`) and move time forward instead of sleeping on the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_clock: Clock = SystemClock()


def now() -> float:
    """Seconds since the epoch (wall clock): timestamps, expiries shared with other instances."""
    return _clock.now()


def monotonic() -> float:
    """Seconds on a clock that never goes back: durations within this process."""
    return _clock.monotonic()


async def sleep(seconds: float) -> None:
    await _clock.sleep(seconds)


def current() -> Clock:
    return _clock


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Read `clock` instead of the real one until the block ends."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous
