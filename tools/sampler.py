"""The one process sampler (psutil): a process's CPU time and memory, and who listens on a port.

Used by the load test (the server's CPU share and memory between the run's milestones) and the
benchmark (the server's CPU per step, its idle memory, a PostgreSQL backend's CPU).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class ProcSample:
    cpu_seconds: float
    rss_bytes: int
    at: float  # time.monotonic()


def sample(pid: int) -> ProcSample | None:
    """CPU time (user + system) and resident memory of a process, or None when it cannot be read."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            rss = process.memory_info().rss
    except (psutil.Error, OSError):
        return None
    return ProcSample(times.user + times.system, rss, time.monotonic())


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0.0 when it cannot be read."""
    taken = sample(pid)
    return taken.cpu_seconds if taken else 0.0


def rss_kb(pid: int) -> int:
    """Resident memory of a process in KiB; 0 when it cannot be read."""
    taken = sample(pid)
    return taken.rss_bytes // 1024 if taken else 0


def find_listener(port: int) -> int | None:
    """The pid of a process on this machine listening on TCP `port`, if we may see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def is_local(host: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return all(a.startswith("127.") or a == "::1" or a == "0.0.0.0" for a in addresses)


class ServerWatch:
    """Samples the server at the run's milestones and reports its CPU share and memory."""

    def __init__(self, pid: int | None, reason: str = ""):
        self.pid = pid
        self.reason = reason
        self.samples: dict[str, ProcSample] = {}

    @classmethod
    def for_server(cls, host: str, port: int, pid: int | None = None) -> ServerWatch:
        if pid is not None:
            return cls(pid, "" if sample(pid) else f"cannot read process {pid}")
        if not is_local(host):
            return cls(None, f"{host} is not this machine (pass --server-pid for a local server)")
        found = find_listener(port)
        if found is None:
            return cls(None, f"no readable process listens on port {port} here (pass --server-pid)")
        return cls(found)

    def mark(self, name: str) -> None:
        if self.pid is not None and (taken := sample(self.pid)) is not None:
            self.samples[name] = taken

    def report(self, windows: dict[str, tuple[str, str]]) -> dict[str, Any]:
        """CPU share of one core within each window between two marks; the memory at the last mark and
        the highest of the marks (`peak_rss_mb`)."""
        if not self.samples:
            return {"available": False, "pid": self.pid, "reason": self.reason or "process not readable"}
        cpu = {}
        for name, (start, end) in windows.items():
            before, after = self.samples.get(start), self.samples.get(end)
            wall = after.at - before.at if before and after else 0
            cpu[name] = round(100 * (after.cpu_seconds - before.cpu_seconds) / wall, 1) if wall else None
        last = max(self.samples.values(), key=lambda taken: taken.at)
        peak = max(taken.rss_bytes for taken in self.samples.values())
        return {
            "available": True,
            "pid": self.pid,
            "cpu_percent": cpu,
            "rss_mb": round(last.rss_bytes / 2**20, 1),
            "peak_rss_mb": round(peak / 2**20, 1),
        }


class PeakRss:
    """The highest resident memory of a process seen while the block runs, polled every `interval` s.

    (psutil offers no kernel high-water mark on every platform; polling is close enough for a
    request that runs for seconds.)
    """

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.kb = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.kb = max(self.kb, rss_kb(self.pid))

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.kb = max(self.kb, rss_kb(self.pid))
