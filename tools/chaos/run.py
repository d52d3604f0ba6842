"""The chaos run: connect every client, count in every room, inject each fault in turn, measure the
recovery after it, then drain and count what reached whom.

Every scan is tagged with the phase it was made in (its code is `CH-<run>-<phase>-<room>-<n>`),
so each fault's row counts the scans made from its injection until the next fault.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from realtime.conf import realtime_settings
from tools.loadtest.http_client import HttpClient
from tools.loadtest.plan import RoomPlan, room_ws_url, ws_base_url

from .cluster import Cluster
from .injections import FAULTS
from .phases import PhaseLog
from .phone import ChaosClient, ClientLog, Room

TICK_SECONDS = 0.25
PRESENCE_POLL_SECONDS = 0.5
# Presence is first read this long after a fault's start: the clients have seen their sockets drop.
PRESENCE_GRACE_SECONDS = 1.0
CONTROL = "steady"


@dataclass(frozen=True)
class ChaosSettings:
    rooms: int = 20
    clients: int = 50
    rate: float = 1.0  # scans per second per room
    heartbeat_ms: int = 2000
    steady_seconds: float = 5.0  # counting with no fault: first, and after each recovery
    recovery_timeout: float = 60.0
    drain_timeout: float = 30.0
    faults: tuple[str, ...] = tuple(FAULTS)
    connect_concurrency: int = 50
    redis_outage_seconds: float = 3.0
    redis_pause: float | None = None  # seconds of DEBUG SLEEP; None: 2.5 heartbeats
    postgres_cut_seconds: float = 5.0
    drop_share: float = 0.1
    offline_seconds: float = 5.0
    log_dir: Path = field(default_factory=lambda: Path("/tmp/inventory-chaos"))

    @property
    def heartbeat(self) -> float:
        return self.heartbeat_ms / 1000

    @property
    def redis_pause_seconds(self) -> float:
        return self.redis_pause if self.redis_pause is not None else 2.5 * self.heartbeat


class ChaosRun:
    def __init__(
        self,
        settings: ChaosSettings,
        cluster: Cluster,
        plans: list[RoomPlan],
        run_id: str,
        say: Callable[[str], None] = lambda line: None,
    ):
        self.settings = settings
        self.say = say
        self.cluster = cluster
        self.run_id = run_id
        self.plans = plans
        self.rooms: list[Room] = []
        self.clients: list[ChaosClient] = []
        self.phases: list[PhaseLog] = []
        self.phase: PhaseLog | None = None
        self.connect_seconds: float | None = None
        self._counting = False
        self.down_at_end: list[ChaosClient] = []

    async def run(self) -> None:
        self._new_phase(CONTROL, "no fault (control)")
        log = ClientLog(self.phase)
        self._log = log
        ws_base = ws_base_url(self.cluster.url, realtime_settings.WEBSOCKET_PATH)
        for plan in self.plans:
            room = Room(plan, self.run_id)
            url = room_ws_url(ws_base, plan.agency, plan.month, plan.year)
            room.clients = [
                ChaosClient(room, index, token, url, log, heartbeat=self.settings.heartbeat)
                for index, token in enumerate(plan.tokens)
            ]
            self.rooms.append(room)
            self.clients += room.clients
        slots = asyncio.Semaphore(self.settings.connect_concurrency)
        began = time.monotonic()
        tasks = [asyncio.create_task(client.run(slots)) for client in self.clients]
        ticker = asyncio.create_task(self._tick())
        try:
            joined = await asyncio.gather(*(client.first_join() for client in self.clients))
            if not all(joined):
                raise RuntimeError(f"{joined.count(False)} clients could not join: {self._refusals()}")
            self.connect_seconds = time.monotonic() - began
            self.say(f"{len(self.clients)} clients joined in {self.connect_seconds:.1f} s; counting")
            self._counting = True
            counters = [asyncio.create_task(self._count(room)) for room in self.rooms]
            await asyncio.sleep(self.settings.steady_seconds)
            for name in self.settings.faults:
                await self._fault(name)
            self._counting = False
            await asyncio.gather(*counters)
            await self._drain()
            self._end_phase()
            self.down_at_end = [client for client in self.clients if not client.joined]
        finally:
            self._counting = False
            ticker.cancel()
            await asyncio.gather(*(client.close() for client in self.clients), return_exceptions=True)
            for task in tasks:
                task.cancel()  # a client still waiting for a connect slot or a handshake
            await asyncio.gather(*tasks, return_exceptions=True)

    # Phases.

    def _new_phase(self, name: str, title: str) -> PhaseLog:
        if self.phase is not None:
            self._end_phase()
        phase = PhaseLog(len(self.phases), name, title, time.monotonic(), time.time())
        phase.counters_at_start = self._counters()
        self.phases.append(phase)
        self.phase = phase
        if hasattr(self, "_log"):
            self._log.phase = phase
        return phase

    def _end_phase(self) -> None:
        self.phase.counters_at_end = self._counters()

    def _counters(self) -> dict[str, int]:
        totals = {"duplicated": 0, "out_of_order": 0, "gaps": 0, "resumes": 0}
        for client in self.clients:
            tracker = client.tracker
            for name in totals:
                totals[name] += getattr(tracker, name)
        return totals

    async def _fault(self, name: str) -> None:
        fault = FAULTS[name]
        phase = self._new_phase(fault.name, fault.title)
        self.say(f"{fault.name}: {fault.title}")
        inject = asyncio.create_task(fault.inject(self))
        inject.add_done_callback(lambda _: setattr(phase, "fault_seconds", time.monotonic() - phase.started))
        await self._recover(phase, inject)
        self.say(
            f"{fault.name}: fault {phase.fault_seconds:.1f} s; every client joined after "
            f"{_seconds(phase.all_live_after)}, scans answered after {_seconds(phase.acked_after)}, "
            f"presence right after {_seconds(phase.presence_after)}; seen: {dict(phase.errors)}"
        )
        await asyncio.sleep(self.settings.steady_seconds)

    async def _recover(self, phase: PhaseLog, inject: asyncio.Task) -> None:
        """Watch from the fault's start until it is over, every client is joined again, every scan made
        until its end answered, and every room's presence right after the last loss."""
        deadline = None
        next_poll = phase.started + PRESENCE_GRACE_SECONDS
        while deadline is None or time.monotonic() < deadline:
            now = time.monotonic()
            if inject.done() and deadline is None:
                inject.result()  # a fault that could not be injected ends the run
                deadline = now + self.settings.recovery_timeout
                injected_at = now
            down = [c for c in self.clients if not (c.joined or c.final_close)]
            if not down and now >= next_poll and phase.presence_after is None:
                next_poll = now + PRESENCE_POLL_SECONDS
                drops = phase.drops
                wrong = await self._presence_wrong()
                phase.presence_wrong = wrong
                if not wrong and phase.drops == drops:
                    phase.presence_after = time.monotonic() - phase.started
            if deadline is not None and not down:
                last = phase.last_live_again
                phase.all_live_after = (last - phase.started) if last and phase.drops else 0.0
                if phase.acked_after is None and self._answered_until(injected_at):
                    phase.acked_after = time.monotonic() - phase.started
                if phase.acked_after is not None and phase.presence_after is not None:
                    return
            await asyncio.sleep(0.1)
        if down:
            phase.all_live_after = None
        phase.notes.append(
            f"not recovered within {self.settings.recovery_timeout:g} s of the fault's end: "
            f"{len(down)} clients not joined; presence wrong: {'; '.join(phase.presence_wrong) or 'none'}"
        )

    def _answered_until(self, moment: float) -> bool:
        """Whether every scan made before `moment` has been confirmed to its sender or refused."""
        for room in self.rooms:
            for scan_id, pending in room.scans.items():
                if pending.created <= moment and scan_id not in room.acked and scan_id not in room.refused:
                    return False
        return True

    async def _presence_wrong(self) -> list[str]:
        """The rooms whose room-info does not count exactly the clients joined now (as `room: n/m`)."""
        answers = await asyncio.gather(*(self._room_info(room) for room in self.rooms))
        wrong = []
        for room, info in zip(self.rooms, answers, strict=True):
            live = room.live_count()
            if info is None:
                wrong.append(f"{room.plan.key}: no answer")
            elif info.get("connections") != live or len(info.get("users") or []) != live:
                wrong.append(f"{room.plan.key}: {info.get('connections')} connections, {live} clients joined")
        return wrong

    async def _room_info(self, room: Room) -> dict[str, Any] | None:
        plan = room.plan
        path = f"/api/inventory/websocket/room-info/{quote(plan.agency, safe='')}/{plan.month}/{plan.year}"
        client = HttpClient(self.cluster.url, headers={"Authorization": f"Token {plan.tokens[0]}"}, timeout=5)
        try:
            response = await client.request("GET", path)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return None
        finally:
            await client.close()
        return response.json() if response.status == 200 else None

    # Counting, and the clients' timers.

    async def _count(self, room: Room) -> None:
        """The room's scans at a steady rate, staggered across rooms, made by its clients in turn."""
        interval = 1 / self.settings.rate
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval * room.plan.index / max(1, len(self.rooms))
        while self._counting:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            room.scan(self.phase.index)
            next_at += interval

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            for client in self.clients:
                client.tick(now)

    async def _drain(self) -> None:
        """Wait until every scan is answered and every joined client holds every confirmed scan."""
        deadline = time.monotonic() + self.settings.drain_timeout
        while time.monotonic() < deadline:
            if self._answered_until(time.monotonic()) and all(
                client.joined and room.acked.keys() <= client.tracker.received
                for room in self.rooms
                for client in room.clients
            ):
                return
            await asyncio.sleep(0.1)
        self.phase.notes.append(f"drain: not settled within {self.settings.drain_timeout:g} s")

    def _refusals(self) -> str:
        counts: dict[str, int] = {}
        for client in self.clients:
            for kind, count in client.counters.items():
                counts[kind] = counts.get(kind, 0) + count
        return ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items())) or "none"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
