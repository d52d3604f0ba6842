"""The load test's WebSocket clients and the room state the clients of one room share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from realtime.wire import CLOSE_ROOM_FULL, CLOSE_UNAVAILABLE, PRESENCE, PRESENCE_CHATTER
from tools.liveclient import LiveClient, Refused, connect_socket, reconnect_delay, unavailable_delay
from tools.tracking import DeliveryTracker, Observation

from .plan import RoomPlan, RunSettings

# Join/leave chatter is most of the traffic while rooms fill up and carries nothing we check, so it
# is counted and skipped without parsing. `"type":"user_joined"` with its quotes bare can only be the
# message's own type (quotes inside JSON strings are escaped), wherever the key stands.
_CHATTER_MARKS = {kind: f'"type":"{kind}"' for kind in sorted(PRESENCE_CHATTER - {PRESENCE})}


def chatter_type(text: str) -> str | None:
    """The type of a join/leave message, read without parsing; None for any other message."""
    for kind, mark in _CHATTER_MARKS.items():
        if mark in text:
            return kind
    return None


# A join refused as busy (4503 `unavailable`) is tried again after the server's retryAfter, as
# the page does, at most this often.
UNAVAILABLE_RETRIES = 10


@dataclass
class JoinRefusal:
    reason: str  # short and countable: `http_403`, `4429 room_full`, `4503 unavailable`, ...
    close_code: int | None
    retryable: bool = False  # the handshake was dropped unanswered (or 1012)
    retry_after: float | None = None  # the server's `retryAfter`, in seconds


@dataclass
class SentScan:
    order: int
    at: float  # time.perf_counter() just before the send


@dataclass
class Sink:
    """A worker's running totals, shared by all its clients; also what the progress bar shows."""

    attempted: int = 0
    accepted: int = 0
    refused: int = 0
    sent: int = 0
    received: int = 0
    latencies: array = field(default_factory=lambda: array("d"))
    errors: Counter = field(default_factory=Counter)
    first_send: float | None = None
    last_receipt: float | None = None
    last_message: float = 0.0  # any message at all, chatter included
    last_joined: float | None = None  # the last `presence` that let a client in
    messages: Counter = field(default_factory=Counter)  # every message received, by type
    retries: int = 0  # handshakes tried again after the server or the network dropped them
    answered: int = 0  # REST scans the server answered 200/201
    last_answer: float | None = None

    def delivered(self, latency: float, now: float) -> None:
        self.received += 1
        self.latencies.append(latency)
        self.last_receipt = now


class RoomState:
    """One room inside a worker: its clients, the scans published in it and which were stored."""

    def __init__(self, plan: RoomPlan):
        self.plan = plan
        self.clients: list[RoomClient] = []
        self.publisher: RoomClient | None = None
        self.publishing = False
        self.sent: dict[str, SentScan] = {}
        # Scan id -> when we first had proof it was stored: someone received it, or REST said 201.
        self.stored_at: dict[str, float] = {}
        self.rejected: Counter = Counter()

    def note_stored(self, scan_id: str, at: float) -> None:
        self.stored_at.setdefault(scan_id, at)

    def settled(self) -> bool:
        """Every scan has an outcome and every connected client has every stored scan."""
        if len(self.stored_at) + sum(self.rejected.values()) < len(self.sent):
            return False
        stored = self.stored_at.keys()
        return all(stored <= client.tracker.received for client in self.clients if client.is_open)


class RoomClient:
    """One simulated user in a room: connects, waits for `presence`, then checks every broadcast."""

    def __init__(self, room: RoomState, index: int, token: str, settings: RunSettings, sink: Sink):
        self.room = room
        self.index = index
        self.token = token
        self.settings = settings
        self.sink = sink
        self.tracker = DeliveryTracker(resume=settings.resume)
        self.accepted = False
        self.dropped = False
        self.refusal: str | None = None  # why the server (or the network) refused us
        self.close_code: int | None = None
        self.closed_at: float | None = None
        self._ws: ClientConnection | None = None
        self._live: LiveClient | None = None
        self._reader: asyncio.Task | None = None
        self._ready: asyncio.Future | None = None
        self._closing = False
        self._server_code: str | None = None
        self._server_retry_after: float | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def is_open(self) -> bool:
        return self.accepted and self.closed_at is None

    async def open(self, slots: asyncio.Semaphore) -> None:
        """Connect and wait for the room's `presence`, holding one of the worker's connect slots.

        A handshake the network or the server dropped unanswered is tried again, up to
        `connect_retries` times, after the live client's backoff (static/js/live-client.js). A join
        the server refused as busy (4503 `unavailable`, with its `retryAfter`) is tried again after
        that wait, as the page does, up to UNAVAILABLE_RETRIES times.
        """
        async with slots:
            self.sink.attempted += 1
            dropped = busy = 0
            while True:
                refusal = await self._join()
                if refusal is None:
                    return
                if refusal.close_code == CLOSE_UNAVAILABLE and busy < UNAVAILABLE_RETRIES:
                    delay = unavailable_delay(busy, refusal.retry_after)
                    busy += 1
                elif refusal.retryable and dropped < self.settings.connect_retries:
                    # At once after 1012 (an instance stopping), else the live client's backoff.
                    delay = reconnect_delay(dropped, close_code=refusal.close_code)
                    dropped += 1
                else:
                    return self._refuse(refusal.reason)
                self.sink.retries += 1
                await asyncio.sleep(delay)

    async def _join(self) -> JoinRefusal | None:
        """One attempt: None once in the room (its `presence` came), else why not."""
        self._ready = asyncio.get_running_loop().create_future()
        self._server_code = self._server_retry_after = None
        self.closed_at = self.close_code = None
        try:
            self._ws = await connect_socket(
                self.settings.room_url(self.room.plan),
                self.token,
                timeout=self.settings.open_timeout,
                ping_interval=None,
                compression=None,
            )
        except Refused as exc:
            return JoinRefusal(exc.reason, exc.close_code, retryable=exc.retryable)
        self._live = LiveClient(self._ws)
        self._reader = asyncio.create_task(self._read())
        try:
            accepted = await asyncio.wait_for(asyncio.shield(self._ready), self.settings.open_timeout)
        except TimeoutError:
            await self.close()
            return JoinRefusal("no_presence", None)
        if not accepted:
            await asyncio.gather(self._reader, return_exceptions=True)
            return JoinRefusal(self._close_reason(), self.close_code, retry_after=self._server_retry_after)
        self.accepted = True
        self.sink.accepted += 1
        self.sink.last_joined = time.perf_counter()
        return None

    async def send_json(self, message: dict) -> None:
        await self._live.send_message(message)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            # Closing a socket that already died: nothing is left to do.
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # Incoming messages.

    async def _read(self) -> None:
        try:
            await self._live.run(self._on_message, raw=True)
        finally:
            self._on_closed()

    def _on_message(self, text: str | bytes) -> None:
        self.sink.last_message = time.perf_counter()
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if (chatter := chatter_type(text)) is not None:
            self.sink.messages[chatter] += 1
            return
        message = json.loads(text)
        kind = message.get("type")
        self.sink.messages[str(kind)] += 1
        data = message.get("data") or {}
        if kind == "scan_added":
            self._on_scan(data)
        elif kind == "presence":
            if not self._ready.done():
                self._ready.set_result(True)
        elif kind == "error":
            self._on_error(data)
        elif kind == "snapshot":
            self._on_snapshot(data)
        elif isinstance(data.get("seq"), int):
            self._follow(self.tracker.observe(data["seq"], now=time.perf_counter()))

    def _on_scan(self, data: dict) -> None:
        now = time.perf_counter()
        scan_id = (data.get("scanData") or {}).get("id")
        sent = self.room.sent.get(scan_id)
        if data.get("replayed"):
            # A retried scan id, confirmed to its sender alone: proof of storage, not a delivery.
            if sent is not None:
                self.room.note_stored(scan_id, now)
            return
        seq = data.get("seq")
        observation = self.tracker.observe(
            seq if isinstance(seq, int) else None,
            scan_id if sent is not None else None,
            order=sent.order if sent is not None else None,
            now=now,
        )
        if observation.new:
            self.room.note_stored(scan_id, now)
            self.sink.delivered(now - sent.at, now)
        self._follow(observation)

    def _on_snapshot(self, data: dict) -> None:
        ids = [scan.get("id") for scan in data.get("scans", []) if isinstance(scan, dict)]
        ours = {i: self.room.sent[i].order for i in ids if i in self.room.sent}
        recovered = self.tracker.observe_snapshot(data.get("seq", 0), ours)
        now = time.perf_counter()
        for scan_id in recovered:
            self.room.note_stored(scan_id, now)
            self.sink.delivered(now - self.room.sent[scan_id].at, now)

    def _on_error(self, data: dict) -> None:
        code = str(data.get("code") or "error")
        if not self._ready.done():
            self._server_code = code  # the explanation of a refusal; the close follows
            retry_after = data.get("retryAfter")
            if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool):
                self._server_retry_after = float(retry_after)
            return
        self.sink.errors[code] += 1
        if self is self.room.publisher and self.room.publishing:
            self.room.rejected[code] += 1

    def _on_closed(self) -> None:
        self.closed_at = time.perf_counter()
        self.close_code = self._ws.close_code
        if not self._ready.done():
            self._ready.set_result(False)
        elif self.accepted and not self._closing:
            self.dropped = True

    def _follow(self, observation: Observation) -> None:
        if observation.resume_from is None:
            return
        task = asyncio.create_task(self._live.resume(observation.resume_from))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Refusals.

    def _refuse(self, reason: str) -> None:
        self.refusal = reason
        self.sink.refused += 1

    def _close_reason(self) -> str:
        code = self.close_code if self.close_code is not None else "closed"
        return f"{code} {self._server_code}" if self._server_code else str(code)

    @property
    def refused_for_room_limit(self) -> bool:
        return self.close_code == CLOSE_ROOM_FULL and not self.accepted
