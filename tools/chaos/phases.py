"""What happened during one phase of the chaos run (a fault and the recovery after it)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class PhaseLog:
    """Filled by the clients while the phase is the run's current one, and by the run's timers."""

    index: int
    name: str
    title: str
    started: float  # time.monotonic()
    wall_started: float  # time.time(), for the report
    fault_seconds: float | None = None  # how long injecting the fault took (the outage, when it has one)
    drops: int = 0  # sockets lost (or dropped by the run)
    downtimes: list[float] = field(default_factory=list)  # seconds from each loss to `presence` again
    errors: Counter = field(default_factory=Counter)  # what clients saw, by kind
    snapshot_clients: set[tuple[int, int]] = field(default_factory=set)  # (room, client)
    # Seconds from the fault until the last client that lost its socket was joined again (0: none lost).
    all_live_after: float | None = None
    acked_after: float | None = None  # ... until every outbox was empty
    presence_after: float | None = None  # ... until every room's presence counted the live clients
    presence_wrong: list[str] = field(default_factory=list)  # rooms still wrong at the timeout
    counters_at_start: dict[str, int] = field(default_factory=dict)
    counters_at_end: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    last_live_again: float | None = None  # time.monotonic() of the last client joined again

    def dropped(self, client) -> None:
        self.drops += 1
        self.presence_after = None  # what was right before this loss is measured again

    def live_again(self, client, seconds: float) -> None:
        self.downtimes.append(seconds)
        self.last_live_again = time.monotonic()

    def snapshot(self, client) -> None:
        self.snapshot_clients.add((client.room.plan.index, client.index))

    def counter(self, name: str) -> int:
        return self.counters_at_end.get(name, 0) - self.counters_at_start.get(name, 0)
