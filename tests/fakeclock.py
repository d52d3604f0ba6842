"""A clock that moves only when the test says so (realtime.clock.use)."""

from __future__ import annotations

import asyncio
import time

from realtime import clock

POLL_SECONDS = 0.005


class FakeClock:
    """Starts at the real time (Redis keys expire relative to it); `advance` moves it on.

    `sleep` returns once the clock has been advanced past its deadline, so a task that sleeps (a
    grace timer, a reporter) wakes when the test moves time, not when the wall clock does. It
    checks every few real milliseconds, and returns at once when this clock is no longer in use,
    so no task is left waiting on a clock that will never move again.
    """

    def __init__(self, start: float | None = None):
        self._now = time.time() if start is None else start
        self._monotonic = 1000.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        deadline = self._monotonic + max(0.0, seconds)
        await asyncio.sleep(0)
        while self._monotonic < deadline and clock.current() is self:
            await asyncio.sleep(POLL_SECONDS)

    def advance(self, seconds: float) -> None:
        """Move both clocks on."""
        self._now += seconds
        self._monotonic += seconds

    async def run_for(self, seconds: float) -> None:
        """Advance, then give the tasks that wake a moment (real time) to run."""
        self.advance(seconds)
        await asyncio.sleep(3 * POLL_SECONDS)
