"""One load-test worker process: connect its share of the rooms, publish, check, report back.

Workers talk to the command through a queue: ("progress" | "ready" | "result" | "failed", index,
payload); they wait on an event so that every room starts publishing at the same moment.
"""

from __future__ import annotations

import asyncio
import resource
import time
import traceback
from collections import Counter
from typing import Any

from tools.tracking import Tally

from .client import RoomClient, RoomState, Sink
from .plan import RoomPlan, RunSettings
from .publisher import publish_room

SETTLE_POLL_SECONDS = 0.05


def run_worker(index: int, settings: RunSettings, rooms: list[RoomPlan], events, go) -> None:
    """Process entry point: run the rooms on uvloop (when installed) and put the result on `events`."""
    _raise_open_files_limit()
    try:
        worker = Worker(index, settings, rooms, events, go)
        result = _run(worker.run())
    except KeyboardInterrupt:
        return
    except BaseException:
        events.put(("failed", index, traceback.format_exc()))
        return
    events.put(("result", index, result))


def _run(coroutine):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _raise_open_files_limit() -> None:
    """Each client is a socket: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Phase:
    """CPU and wall time spent between two moments of this process."""

    def __init__(self):
        self.cpu = time.process_time()
        self.wall = time.perf_counter()

    def done(self) -> dict[str, float]:
        return {"cpu": time.process_time() - self.cpu, "wall": time.perf_counter() - self.wall}


class Worker:
    def __init__(self, index: int, settings: RunSettings, rooms: list[RoomPlan], events, go):
        self.index = index
        self.settings = settings
        self.events = events
        self.go = go
        self.sink = Sink()
        self.rooms = [RoomState(plan) for plan in rooms]
        # Client 0 of every room first, then client 1 of every room...: publishers get in first
        # and the connection load is spread over the rooms.
        for room in self.rooms:
            room.clients = [
                RoomClient(room, position, token, settings, self.sink)
                for position, token in enumerate(room.plan.tokens)
            ]
        widest = max((len(room.clients) for room in self.rooms), default=0)
        self.clients = [
            room.clients[position]
            for position in range(widest)
            for room in self.rooms
            if position < len(room.clients)
        ]
        # perf_counter -> wall clock, to compare moments across processes.
        self._wall_offset = time.time() - time.perf_counter()

    async def run(self) -> dict[str, Any]:
        reporter = asyncio.create_task(self._report_progress())
        try:
            connect = Phase()
            # 0: every handshake at once, as after a deploy when every client reconnects.
            slots = asyncio.Semaphore(self.settings.connect_concurrency or max(1, len(self.clients)))
            await asyncio.gather(*(client.open(slots) for client in self.clients))
            for room in self.rooms:
                room.publisher = next((c for c in room.clients if c.is_open), None)
            chatter_over = await self._quiet()
            connect_phase = connect.done()
            join = self._join(connect.wall, chatter_over)
            self.events.put(("ready", self.index, self.progress()))
            while not self.go.is_set():
                await asyncio.sleep(0.01)

            publish = Phase()
            await self._publish()
            await self._settle()
            publish_phase = publish.done()
        finally:
            reporter.cancel()
            await asyncio.gather(*(client.close() for client in self.clients))
            self.events.put(("progress", self.index, self.progress()))
        return self._result({"connect": connect_phase, "publish": publish_phase}, join)

    async def _publish(self) -> None:
        """Every room publishes from the same start, staggered within one interval so sends spread out."""
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        # A closed loop has no rate to stagger by: every room starts at once.
        interval = 0 if self.settings.closed_loop else 1 / self.settings.rate
        total = max(1, self.settings.rooms_total)
        await asyncio.gather(
            *(
                publish_room(room, self.settings, start + interval * room.plan.index / total, self.sink)
                for room in self.rooms
            )
        )

    async def _quiet(self) -> bool:
        """Wait until no client has received anything for `quiet_seconds`; False if still receiving.

        Every join is announced to the whole room: the server is still sending those announcements
        after the last `presence`.
        """
        quiet = self.settings.quiet_seconds
        deadline = time.perf_counter() + self.settings.quiet_timeout
        while time.perf_counter() < deadline:
            silent = time.perf_counter() - self.sink.last_message
            if silent >= quiet:
                return True
            await asyncio.sleep(min(quiet - silent, max(0.01, deadline - time.perf_counter())))
        return False

    def _join(self, started: float, chatter_over: bool) -> dict[str, Any]:
        """When the join started, when the last client got in, and the last message before publishing.

        Nothing is published while the clients join, so every message until then is join chatter.
        """
        last_message = self.sink.last_message if self.sink.last_message >= started else None
        return {
            "started": self._wall(started),
            "last_joined": self._wall(self.sink.last_joined),
            "last_message": self._wall(last_message),
            "chatter_over": chatter_over,
            "messages": dict(self.sink.messages),
            "retries": self.sink.retries,
        }

    async def _settle(self) -> None:
        """Wait until every client has every stored scan, or the drain timeout passes."""
        deadline = time.perf_counter() + self.settings.drain_timeout
        while time.perf_counter() < deadline:
            if all(room.settled() for room in self.rooms):
                return
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(self.settings.progress_interval)
            self.events.put(("progress", self.index, self.progress()))

    def progress(self) -> dict[str, int]:
        return {
            "attempted": self.sink.attempted,
            "accepted": self.sink.accepted,
            "refused": self.sink.refused,
            "sent": self.sink.sent,
            "stored": sum(len(room.stored_at) for room in self.rooms),
            "received": self.sink.received,
        }

    def _wall(self, moment: float | None) -> float | None:
        return None if moment is None else moment + self._wall_offset

    def _result(self, cpu: dict[str, dict[str, float]], join: dict[str, Any]) -> dict[str, Any]:
        refused, dropped = Counter(), Counter()
        room_full = 0
        tally = Tally()
        rooms = []
        for room in self.rooms:
            orders = {scan_id: sent.order for scan_id, sent in room.sent.items()}
            stored = {scan_id: orders[scan_id] for scan_id in room.stored_at}
            horizons = []
            for client in room.clients:
                if client.refused_for_room_limit:
                    room_full += 1
                elif client.refusal is not None:
                    refused[client.refusal] += 1
                if not client.accepted:
                    continue
                if client.dropped:
                    dropped[str(client.close_code)] += 1
                    expected = {i: stored[i] for i, at in room.stored_at.items() if at <= client.closed_at}
                else:
                    horizons.append(client.tracker.horizon)
                    expected = stored
                tally.add(client.tracker.tally(expected))
            rooms.append(
                {
                    "key": room.plan.key,
                    "sent": len(room.sent),
                    "rejected": dict(room.rejected),
                    "stored_ids": sorted(stored),
                    # For scans the database holds but no client saw: who should have had them.
                    "orders": orders,
                    "horizons": horizons,
                    "publisher": room.publisher is not None,
                }
            )
        return {
            "worker": self.index,
            "connections": {
                "attempted": self.sink.attempted,
                "accepted": self.sink.accepted,
                "refused_room_full": room_full,
                "refused": dict(refused),
                "dropped": dict(dropped),
            },
            "rooms": rooms,
            "tally": tally.as_dict(),
            "errors": dict(self.sink.errors),
            "latencies": self.sink.latencies,
            "first_send": self._wall(self.sink.first_send),
            "last_receipt": self._wall(self.sink.last_receipt),
            "answered": self.sink.answered,
            "last_answer": self._wall(self.sink.last_answer),
            "join": join,
            "cpu": cpu,
        }
