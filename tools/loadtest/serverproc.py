"""Watch the server process's CPU and memory through /proc, when it runs on this machine."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class ProcSample:
    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int
    at: float


def sample(pid: int, proc: Path = PROC) -> ProcSample | None:
    """CPU time (user + system) and memory of a process, or None when it cannot be read."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    memory = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            memory[name] = int(value.split()[0]) * 1024
    return ProcSample(cpu, memory.get("VmRSS", 0), memory.get("VmHWM", 0), time.monotonic())


def listening_inodes(port: int, proc: Path = PROC) -> set[str]:
    """Inodes of the sockets listening on `port` (any address), from /proc/net/tcp and tcp6."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            if (
                len(columns) > 9
                and columns[3] == TCP_LISTEN
                and int(columns[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(columns[9])
    return inodes


def find_listener(port: int, proc: Path = PROC) -> int | None:
    """The pid of a process on this machine listening on `port`, if we may look at its sockets."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not wanted:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(entry.name)
        except OSError:
            continue
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
            return cls(pid, "" if sample(pid) else f"cannot read /proc/{pid}")
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
        """CPU share of one core within each window between two marks, and the memory at the end."""
        if not self.samples:
            return {"available": False, "pid": self.pid, "reason": self.reason or "process not readable"}
        cpu = {}
        for name, (start, end) in windows.items():
            before, after = self.samples.get(start), self.samples.get(end)
            wall = after.at - before.at if before and after else 0
            cpu[name] = round(100 * (after.cpu_seconds - before.cpu_seconds) / wall, 1) if wall else None
        last = max(self.samples.values(), key=lambda taken: taken.at)
        return {
            "available": True,
            "pid": self.pid,
            "cpu_percent": cpu,
            "rss_mb": round(last.rss_bytes / 2**20, 1),
            "peak_rss_mb": round(last.peak_rss_bytes / 2**20, 1),
        }
