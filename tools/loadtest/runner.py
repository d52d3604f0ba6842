"""Run the workers (one process each), drive the progress bar, and collect their results."""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from tools.sampler import ServerWatch

from .plan import RoomPlan, RunSettings
from .worker import run_worker

# A worker that exited cleanly has put its result on the queue; allow the pipe this long to deliver it.
RESULT_GRACE_SECONDS = 5.0


@dataclass
class RunOutcome:
    results: list[dict[str, Any]]
    failures: dict[int, str] = field(default_factory=dict)
    main_cpu: dict[str, float] = field(default_factory=dict)


def run_workers(
    settings: RunSettings, shares: list[list[RoomPlan]], *, progress, server: ServerWatch
) -> RunOutcome:
    """Start one process per share, start publishing once every client is in, wait for every result."""
    # Spawned, not forked: the command holds database connections and rich's refresh thread.
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    go = context.Event()
    processes = [
        context.Process(
            target=run_worker,
            args=(index, settings, share, events, go),
            name=f"ws-loadtest-{index}",
            daemon=True,
        )
        for index, share in enumerate(shares)
    ]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    server.mark("start")
    for process in processes:
        process.start()

    counts: dict[int, dict[str, int]] = {}
    ready: set[int] = set()
    results: dict[int, dict[str, Any]] = {}
    failures: dict[int, str] = {}
    exited_at: dict[int, float] = {}
    go_at: float | None = None
    try:
        while len(results) + len(failures) < len(processes):
            try:
                kind, index, payload = events.get(timeout=0.1)
            except queue.Empty:
                _notice_dead_workers(processes, results, failures, exited_at)
            else:
                if kind in ("progress", "ready"):
                    counts[index] = payload
                if kind == "ready":
                    ready.add(index)
                elif kind == "result":
                    results[index] = payload
                elif kind == "failed":
                    failures[index] = payload
            if go_at is None and len(ready | failures.keys()) == len(processes):
                server.mark("ready")
                go.set()
                go_at = time.perf_counter()
            total = _sum_counts(counts.values())
            if go_at is None:
                progress.update("connect", total)
            else:
                progress.update("publish", total, time.perf_counter() - go_at)
    finally:
        go.set()
        server.mark("end")
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
    return RunOutcome(
        results=[results[index] for index in sorted(results)],
        failures=failures,
        main_cpu={"cpu": time.process_time() - cpu_start, "wall": time.perf_counter() - wall_start},
    )


def _notice_dead_workers(processes, results, failures, exited_at) -> None:
    now = time.perf_counter()
    for index, process in enumerate(processes):
        if index in results or index in failures or process.exitcode is None:
            continue
        if process.exitcode != 0:
            failures[index] = f"worker {index} exited with status {process.exitcode}"
        elif now - exited_at.setdefault(index, now) > RESULT_GRACE_SECONDS:
            failures[index] = f"worker {index} exited without a result"


def _sum_counts(counts) -> dict[str, int]:
    total: dict[str, int] = {}
    for worker_counts in counts:
        for name, value in worker_counts.items():
            total[name] = total.get(name, 0) + value
    return total
