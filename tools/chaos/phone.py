"""The chaos run's clients: a live-room client that behaves as the live page does.

Like static/js/live-client.js it keeps every scan in an outbox under a client-generated id until
the server confirms it (its own `scan_added`, a `replayed` answer or a `snapshot` holding it),
sends at most MAX_IN_FLIGHT at a time, joins with `?since=<last seq>`, drops the socket and
rejoins that way on a seq gap, reconnects with exponential backoff and jitter, gives up a socket
that answers nothing (no reply in REPLY_TIMEOUT, or silent past two heartbeats), reconnects at
once on 1012 and, after a 4503, waits the refusal's `retryAfter` (else its backoff) plus up to 3 s
at random. One deviation:
a request answered `database_unavailable` or `unavailable` is sent again after RETRY_SECONDS on
the same socket; the page leaves it in flight until its reply timeout drops the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

import realtime.wire as wire
from tools.liveclient import LiveClient, Refused, connect_socket, unavailable_delay, with_since
from tools.loadtest.client import chatter_type, reconnect_delay
from tools.loadtest.plan import RoomPlan
from tools.tracking import DeliveryTracker

if TYPE_CHECKING:
    from .phases import PhaseLog

# 1012 "service restart, reconnect now": the graceful-shutdown work adds it to realtime.wire.
CLOSE_SERVICE_RESTART = getattr(wire, "CLOSE_SERVICE_RESTART", 1012)
FINAL_CLOSE_CODES = {
    wire.CLOSE_UNAUTHENTICATED,
    wire.CLOSE_FORBIDDEN,
    wire.CLOSE_NOT_FOUND,
    wire.CLOSE_COMPLETED,
}
# As the page: requests in flight at once, and how long one may wait for its answer.
MAX_IN_FLIGHT = 8
REPLY_TIMEOUT = 10.0
RATE_LIMIT_RETRY_SECONDS = 5.0
RETRY_SECONDS = 1.0
# Answers that settle a request as refused (the page's REPLY_ERROR_CODES); others are retried.
REFUSING_CODES = wire.REFUSING_ERROR_CODES
RETRIED_CODES = frozenset({"rate_limited", "database_unavailable", "unavailable"})


@dataclass
class Pending:
    """One scan in a client's outbox."""

    scan_id: str
    code: str
    order: int  # the room's order of creation
    phase: int
    created: float
    sent_at: float | None = None  # in flight since; None: waiting to be sent
    retry_at: float = 0.0
    attempts: int = 0


class Room:
    """One room of the run: its clients and every scan they made."""

    def __init__(self, plan: RoomPlan, run_id: str):
        self.plan = plan
        self.run_id = run_id
        self.clients: list[ChaosClient] = []
        self.scans: dict[str, Pending] = {}  # every scan made, by id
        self.acked: dict[str, float] = {}  # scan id -> when its sender had the server's confirmation
        self.refused: dict[str, str] = {}  # scan id -> the error code that refused it
        self.seqs: dict[str, int] = {}  # scan id -> its event's seq, as a client received it
        self._turn = None

    def scan(self, phase: int, client: ChaosClient | None = None) -> Pending:
        """The next scan of the room, made by `client` or by its clients in turn (online or not)."""
        if self._turn is None:
            self._turn = itertools.cycle(self.clients)
        client = client or next(self._turn)
        order = len(self.scans)
        pending = Pending(
            scan_id=_uuid(),
            code=f"CH-{self.run_id}-{phase:02d}-{self.plan.index:03d}-{order:05d}",
            order=order,
            phase=phase,
            created=time.monotonic(),
        )
        self.scans[pending.scan_id] = pending
        client.scan(pending)
        return pending

    def live_count(self) -> int:
        return sum(1 for client in self.clients if client.joined)


def _uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class ClientLog:
    """Where a client reports what happened to it: the run's current phase."""

    phase: PhaseLog


class ChaosClient:
    """One person's phone in one room, connected through the run's front proxy."""

    def __init__(self, room: Room, index: int, token: str, url: str, log: ClientLog, *, heartbeat: float):
        self.room = room
        self.index = index
        self.token = token
        self.url = url
        self.log = log
        self.heartbeat = heartbeat
        self.tracker = DeliveryTracker(resume=True, start=0)
        self.outbox: dict[str, Pending] = {}
        self.joined = False
        self.joins = 0
        self.stopped = False
        self.final_close: int | None = None
        self.down_since: float | None = None  # when the socket was lost, until the next `presence`
        self.down_phase: PhaseLog | None = None
        self.snapshots = 0
        self.counters: Counter = Counter()  # errors, refusals and closes seen, by kind
        self._live: LiveClient | None = None
        self._refusal_code: str | None = None
        self._retry_after: float | None = None  # the refusal's retryAfter (a 4503 while many join)
        self._session_joined = False  # this socket got its `presence`
        self._slot: asyncio.Semaphore | None = None
        self._last_heard = 0.0
        self._last_ping = 0.0
        self._attempt = 0
        self._offline_until = 0.0
        self._reconnect_in: float | None = None  # the next reconnect's delay, instead of the backoff
        self._wake = asyncio.Event()
        self._sends: set[asyncio.Task] = set()
        self._first = asyncio.get_running_loop().create_future()

    # The connection loop.

    async def run(self, slots: asyncio.Semaphore) -> None:
        """Connect, read until the socket closes, reconnect as the page does; until stop()."""
        # The first handshake waits for one of the run's connect slots, held until it is answered.
        await slots.acquire()
        self._slot = slots
        try:
            while not self.stopped:
                delay = self._offline_until - time.monotonic()
                if delay > 0:
                    await self._sleep(delay)
                    continue
                await self._session()
                self._release_slot()
                if self.stopped or self.final_close is not None:
                    break
                await self._sleep(self._next_delay())
        finally:
            self._release_slot()
        if not self._first.done():
            self._first.set_result(False)

    def _release_slot(self) -> None:
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    async def first_join(self) -> bool:
        """Whether the first connection got in."""
        return await asyncio.shield(self._first)

    async def _session(self) -> None:
        since = self.tracker.last_seq
        try:
            ws = await connect_socket(
                with_since(self.url, since), self.token, timeout=10, ping_interval=None, compression=None
            )
        except Refused as exc:
            self._count(f"refused: {exc.reason.split(':')[0]}")
            self._first_failed()
            return
        self._live = LiveClient(ws)
        self._refusal_code = None
        self._retry_after = None
        self._session_joined = False
        self._last_heard = time.monotonic()
        code = await self._live.run(self._on_message, raw=True)
        self._on_closed(code)

    def _next_delay(self) -> float:
        if self._reconnect_in is not None:
            delay, self._reconnect_in = self._reconnect_in, None
            return delay
        delay = reconnect_delay(self._attempt)
        self._attempt += 1
        return max(delay, self._offline_until - time.monotonic())

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, seconds))

    def _first_failed(self) -> None:
        """A client still refused after 20 tries cannot start the run (the run says why)."""
        if not self._first.done() and self._attempt >= 20:
            self._first.set_result(False)

    def _on_closed(self, code: int | None) -> None:
        if self.stopped:
            self.joined = False
            return  # the run is over: its own close
        now = time.monotonic()
        was_joined, self._session_joined = self._session_joined, False
        self.joined = False
        for pending in self.outbox.values():
            pending.sent_at = None  # whatever was in flight is sent again on the next socket
        if was_joined:
            if self.down_since is None:
                self.down_since, self.down_phase = now, self.log.phase
                self.down_phase.dropped(self)
            self._count(f"closed: {code}")
        else:
            self._count(f"refused: {code} {self._refusal_code}" if self._refusal_code else f"refused: {code}")
            self._first_failed()
        if code in FINAL_CLOSE_CODES:
            self.final_close = code
        if code == CLOSE_SERVICE_RESTART:
            # Reconnect now, with a little jitter so that a whole instance does not arrive in one instant.
            self._reconnect_in = random.random() * 0.25
        elif code == wire.CLOSE_UNAVAILABLE:
            self._reconnect_in = max(
                unavailable_delay(self._attempt, self._retry_after), self._offline_until - now
            )
            self._attempt += 1

    def _count(self, kind: str) -> None:
        self.counters[kind] += 1
        self.log.phase.errors[kind] += 1

    # What the run does to the client.

    def stop(self) -> None:
        self.stopped = True
        self._wake.set()

    async def close(self) -> None:
        self.stop()
        if self._live is not None:
            await self._live.close()

    def drop(self, *, offline_for: float = 0.0, reconnect_now: bool = False) -> None:
        """Lose the network: abort the socket (no close frame), stay offline `offline_for` seconds."""
        now = time.monotonic()
        self._offline_until = now + offline_for
        self._reconnect_in = 0.0 if reconnect_now else None
        self.joined = False
        if self.down_since is None:
            self.down_since, self.down_phase = now, self.log.phase
            self.down_phase.dropped(self)
        if self._live is not None and self._live.ws.transport is not None:
            self._live.ws.transport.abort()
        self._wake.set()

    def scan(self, pending: Pending) -> None:
        """A scan made on this phone: queued, and sent now if the room is joined."""
        self.outbox[pending.scan_id] = pending
        self.pump()

    # The outbox.

    def pump(self) -> None:
        if not self.joined:
            return
        now = time.monotonic()
        in_flight = sum(1 for pending in self.outbox.values() if pending.sent_at is not None)
        for pending in self.outbox.values():
            if in_flight >= MAX_IN_FLIGHT:
                break
            if pending.sent_at is None and pending.retry_at <= now:
                self._send_scan(pending, now)
                in_flight += 1

    def tick(self, now: float) -> None:
        """Every quarter second: retries, the reply timeout and the silence check of the page."""
        if not self.joined or self._live is None:
            return
        in_flight = [p.sent_at for p in self.outbox.values() if p.sent_at is not None]
        if in_flight and now - min(in_flight) > REPLY_TIMEOUT:
            self._count("gave up: no reply")
            self._give_up()
            return
        silence = now - self._last_heard
        if silence > 2 * self.heartbeat + 5:
            self._count("gave up: silent")
            self._give_up()
            return
        if silence >= self.heartbeat and now - self._last_ping >= self.heartbeat:
            self._last_ping = now
            self._send({"type": wire.PING, "data": {"timestamp": _iso_now()}})
        self.pump()

    def _give_up(self) -> None:
        """The page's dropSocket: close it and reconnect."""
        task = asyncio.create_task(self._live.ws.close())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _send_scan(self, pending: Pending, now: float) -> None:
        pending.sent_at = now
        pending.attempts += 1
        plan = self.room.plan
        scan_data = {"code": pending.code, "id": pending.scan_id, "timestamp": _iso_now()}
        data = {"agency": plan.agency, "month": str(plan.month), "year": plan.year, "scanData": scan_data}
        self._send({"type": wire.SCAN_ADDED, "ref": pending.scan_id, "data": data})

    def _send(self, message: dict) -> None:
        live = self._live
        if live is None:
            return

        async def send() -> None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await live.send_message(message)

        task = asyncio.create_task(send())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _settle(self, scan_id: str, *, refused: str | None = None) -> None:
        pending = self.outbox.pop(scan_id, None)
        if pending is None:
            return
        if refused is None:
            self.room.acked.setdefault(scan_id, time.monotonic())
        else:
            self.room.refused[scan_id] = refused
        self.pump()

    # Incoming messages.

    def _on_message(self, text: str | bytes) -> None:
        self._last_heard = time.monotonic()
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if chatter_type(text) is not None:
            return
        message = json.loads(text)
        kind = message.get("type")
        data = message.get("data") or {}
        if kind == wire.PRESENCE:
            self._on_joined()
        elif kind == wire.SCAN_ADDED:
            self._on_scan(data)
        elif kind == wire.SNAPSHOT:
            self._on_snapshot(data)
        elif kind == wire.ERROR:
            self._on_error(data, message.get("ref"))
        elif isinstance(data.get("seq"), int):
            self._follow(self.tracker.observe(data["seq"], now=self._last_heard).resume_from)

    def _on_joined(self) -> None:
        self.joined = self._session_joined = True
        self.joins += 1
        self._attempt = 0
        self._release_slot()
        if not self._first.done():
            self._first.set_result(True)
        if self.down_since is not None:
            self.down_phase.live_again(self, time.monotonic() - self.down_since)
            self.down_since = self.down_phase = None
        self.pump()

    def _on_scan(self, data: dict) -> None:
        scan_id = (data.get("scanData") or {}).get("id")
        if data.get("replayed"):
            self._settle(scan_id)  # a retried id, already stored: the answer to its sender alone
            return
        sent = self.room.scans.get(scan_id)
        seq = data.get("seq")
        if sent is not None and isinstance(seq, int):
            self.room.seqs.setdefault(scan_id, seq)
        observation = self.tracker.observe(
            seq if isinstance(seq, int) else None,
            scan_id if sent is not None else None,
            order=sent.order if sent is not None else None,
            now=self._last_heard,
        )
        if scan_id in self.outbox:
            self._settle(scan_id)
        self._follow(observation.resume_from)

    def _on_snapshot(self, data: dict) -> None:
        ids = [scan.get("id") for scan in data.get("scans", []) if isinstance(scan, dict)]
        scans = self.room.scans
        self.tracker.observe_snapshot(data.get("seq", 0), {i: scans[i].order for i in ids if i in scans})
        self.snapshots += 1
        self.log.phase.snapshot(self)
        for scan_id in ids:
            if scan_id in self.outbox:
                self._settle(scan_id)

    def _on_error(self, data: dict, ref: str | None) -> None:
        code = str(data.get("code") or "error")
        if not self.joined:
            self._refusal_code = code  # the explanation of a refusal; the close follows
            self._retry_after = data.get("retryAfter")
            return
        self._count(f"error: {code}")
        pending = self.outbox.get(ref) if ref else None
        if pending is None:
            return
        if code in REFUSING_CODES:
            self._settle(pending.scan_id, refused=code)
        else:  # retried (RETRIED_CODES), or anything unforeseen: nothing was stored, send it again
            wait = RATE_LIMIT_RETRY_SECONDS if code == "rate_limited" else RETRY_SECONDS
            pending.sent_at = None
            pending.retry_at = time.monotonic() + wait

    def _follow(self, resume_from: int | None) -> None:
        """A seq gap: as the page does, drop the socket and rejoin with ?since=<last seq> (the replay
        fills the gap). Asking for a replay on the same socket, and again when it is slow, would
        bring the events twice."""
        if resume_from is not None and self._live is not None:
            self._count("gave up: seq gap")
            self._give_up()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
