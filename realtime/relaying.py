"""A socket's side of the per-process relay (realtime.fanout).

Each event of the socket's room and user streams arrives here once, in order: it is sent in seq
order with no gap or repeat, a gap is filled from the event log, and while the socket sends from
the log (its join, a resume, a gap fill) later events are held back and sent after, in its own
task, so that the process's relay never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from django.db import DatabaseError

from inventory.reconciliation.matching import code_key

from . import broadcast, clock, metrics, protocol
from .revocation import USER_REVOKED

logger = logging.getLogger("realtime.consumer")

# Tasks started for a socket (gap fills, revocation checks, departures after their grace period):
# a reference keeps each alive until it ends.
_tasks: set[asyncio.Task] = set()


def later(coroutine) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


# The messages that answer a client's own request by the room's broadcast of its event.
OWN_KINDS = frozenset({protocol.SCAN_ADDED, protocol.SCAN_REMOVED, protocol.INVENTORY_COMPLETED})


def with_ref(text: str, ref: str) -> str:
    """A message's ready JSON text with the client's `ref` added at its top level."""
    return f'{text[:-1]},"ref":{json.dumps(ref, ensure_ascii=False)}}}'


def _own_key(kind: str, scan: dict[str, Any]) -> tuple | None:
    """How the event a request asked for will be known; None when the request names no scan (refused)."""
    if kind == protocol.INVENTORY_COMPLETED:
        return (kind,)
    if isinstance(scan.get("id"), str) and scan["id"]:
        return (kind, "id", scan["id"].lower())
    return _code_key(kind, scan.get("code"))


def _code_key(kind: str, code) -> tuple | None:
    """As the server compares codes: a removal sent as "b2" answers the broadcast of "B2".

    None for a code that is not text: the request names no scan and is refused.
    """
    return (kind, "code", code_key(code)) if isinstance(code, str) else None


class _Expected:
    """One request whose answer is its event's broadcast: `arrives` keeps its ref for the relay."""

    def __init__(self, own: OwnEvents, key: tuple | None):
        self.own = own
        self.key = key
        self.kept = False

    def arrives(self, scan) -> None:
        """The event was recorded: its broadcast carries the ref (keyed by the stored scan's id)."""
        self.kept = True
        if self.key is None or scan is None or self.key[1] == "id" or self.key not in self.own.refs:
            return
        ref = self.own.refs.pop(self.key)
        self.own.refs[(self.key[0], "id", str(scan.uid).lower())] = ref


class OwnEvents:
    """The refs of a socket's requests answered by the broadcast of their event (its own scans)."""

    LIMIT = 64  # refs whose event never came are dropped, oldest first
    __slots__ = ("user_id", "refs")  # one per socket: no instance dict

    def __init__(self, user_id: Any = None):
        self.user_id = str(user_id) if user_id is not None else None
        self.refs: dict[tuple, str] = {}

    @contextlib.contextmanager
    def expecting(self, kind: str, scan: dict[str, Any], ref: str | None):
        key = _own_key(kind, scan) if ref is not None else None
        # A request like one whose broadcast is still on its way (sent twice without waiting)
        # leaves that ref alone: it cannot make the same event again, its own reply carries its ref.
        expected = _Expected(self, key if key not in self.refs else None)
        if expected.key is not None:
            self.refs[expected.key] = ref
            while len(self.refs) > self.LIMIT:
                self.refs.pop(next(iter(self.refs)))
        try:
            yield expected
        finally:
            if expected.key is not None and not expected.kept:
                self.refs.pop(expected.key, None)

    def ref_of(self, message: dict[str, Any]) -> str | None:
        """The ref of the request this message answers, taken once; None for anyone else's."""
        kind = message.get("type")
        if not self.refs or kind not in OWN_KINDS:
            return None
        data = message.get("data") or {}
        if kind == protocol.INVENTORY_COMPLETED:
            return self.refs.pop((kind,), None)
        if str(data.get("userId")) != self.user_id:
            return None
        scan = data.get("scanData") or {}
        found = self.refs.pop(_own_key(kind, scan), None)
        if found is None and scan.get("code") is not None:
            found = self.refs.pop(_code_key(kind, scan["code"]), None)
        return found

    def text_of(self, event: dict[str, Any]) -> str:
        """A relayed event's text, with the ref of this socket's request when it answers one."""
        text = event["text"]
        if self.refs and event.get("kind") in OWN_KINDS:
            ref = self.ref_of(json.loads(text))
            if ref is not None:
                return with_ref(text, ref)
        return text


class RelayedEvents:
    """Mixed into the consumer, which provides `joined`, `last_seq`, `group_name`, `channel_name`,
    `send`, `close`, `user_revoked`, `_backfill` (the log from `last_seq` on), `_database_down`
    and `own` (an `OwnEvents`)."""

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
        await self.send(text_data=self.own.text_of(event))
        metrics.local.messages_sent += 1
        metrics.local.delivered(clock.now() - event["sent"])

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
