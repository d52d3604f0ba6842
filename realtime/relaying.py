"""A socket's side of the per-process relay (realtime.fanout).

Each event of the socket's room and user streams arrives here once, in order: it is sent in seq
order with no gap or repeat, a gap is filled from the event log, and while the socket sends from
the log (its join, a resume, a gap fill) later events are held back and sent after, in its own
task, so that the process's relay never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from django.db import DatabaseError

from . import broadcast, metrics
from .revocation import USER_REVOKED

logger = logging.getLogger("realtime.consumer")

# Tasks started for a socket (gap fills, revocation checks, departures after their grace period):
# a reference keeps each alive until it ends.
_tasks: set[asyncio.Task] = set()


def later(coroutine) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


class RelayedEvents:
    """Mixed into the consumer, which provides `joined`, `last_seq`, `group_name`, `channel_name`,
    `send`, `close`, `user_revoked`, `_backfill` (the log from `last_seq` on) and `_database_down`."""

    # Relayed events held back while this socket sends from the log (join, resume, gap fill).
    _held: deque | None = None
    _sending: asyncio.Lock | None = None

    async def relay(self, event):
        """Take one event of this room or user, in order; never waits on the database here.

        A gap in seq, or a send from the log in progress, holds the event back for this socket's
        own task (`_holding`), so the process's relay goes on to the other sockets at once.
        """
        if self._held is not None:
            self._held.append(event)
            return
        seq = event.get("seq")
        if seq is not None and seq > self.last_seq + 1:
            self._held = deque([event])
            later(self._release_held())
            return
        await self._pass_on(event)

    async def _pass_on(self, event):
        """Send one relayed event: ready JSON text, in seq order, with no gap or repeat."""
        if not self.joined:  # refused or closed while the event was held back
            return
        kind = event["type"]
        if kind == broadcast.ROOM_CLOSE:  # the inventory was completed: end this session
            await self.close()
            return
        if kind == USER_REVOKED:
            later(self.user_revoked(event))
            return
        seq = event.get("seq")
        if seq is not None:
            if seq <= self.last_seq:
                return
            if seq > self.last_seq + 1:
                # An event was dropped or overtaken on its way here: fill the gap from the log.
                metrics.local.gaps_filled += 1
                logger.info("%s: filling seq gap %s..%s", self.group_name, self.last_seq + 1, seq - 1)
                await self._backfill(until=seq - 1)
            self.last_seq = seq
        await self.send(text_data=event["text"])
        metrics.local.messages_sent += 1
        metrics.local.delivered(time.time() - event["sent"])

    @contextlib.asynccontextmanager
    async def _holding(self):
        """Hold relayed events while this socket sends from the log; then send them, in order."""
        if self._held is None:
            self._held = deque()
        if self._sending is None:
            self._sending = asyncio.Lock()
        async with self._sending:
            try:
                yield
            finally:
                await self._drain_held()

    async def _release_held(self) -> None:
        async with self._holding():
            pass

    async def _drain_held(self) -> None:
        try:
            while self._held:
                await self._pass_on(self._held.popleft())
        except DatabaseError as exc:
            logger.error("Database unavailable filling a gap for %s: %s", self.channel_name, exc)
            self._held = None
            await self._database_down()
        finally:
            self._held = None
