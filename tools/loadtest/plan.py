"""What a load-test run does: its rooms, their clients' tokens, and how they are shared by workers."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit


@dataclass(frozen=True)
class RoomPlan:
    """One room and the tokens of its clients; client 0 publishes."""

    index: int
    agency: str
    month: int
    year: int
    tokens: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.month}/{self.year}"


@dataclass(frozen=True)
class RunSettings:
    """Everything a worker needs besides its rooms; plain values, so it crosses process boundaries."""

    run_id: str
    http_url: str
    ws_base: str
    via: str
    rate: float
    duration: float
    rooms_total: int
    resume: bool = True
    connect_concurrency: int = 50  # handshakes in flight at once per worker; 0: all of them
    connect_retries: int = 0  # a handshake dropped unanswered is tried again this often
    # Publishing starts once the sockets have been quiet this long (the join chatter is over),
    # or when they were never quiet that long within `quiet_timeout`.
    quiet_seconds: float = 0.5
    quiet_timeout: float = 15.0
    closed_loop: bool = False  # each publisher sends its next scan once the last is answered (REST)
    open_timeout: float = 10.0
    drain_timeout: float = 5.0
    progress_interval: float = 0.2

    @property
    def scans_per_room(self) -> int:
        return scans_per_room(self.rate, self.duration)

    def room_url(self, room: RoomPlan) -> str:
        return room_ws_url(self.ws_base, room.agency, room.month, room.year)


def scans_per_room(rate: float, duration: float) -> int:
    return max(0, round(rate * duration))


def ws_base_url(url: str, websocket_path: str) -> str:
    """`http://host:5000` + `/ws/inventory` -> `ws://host:5000/ws/inventory` (https -> wss)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")
    return f"{scheme}://{parts.netloc}/{websocket_path.strip('/')}"


def http_base_url(url: str) -> str:
    """The server's root as http(s)://host:port, whichever scheme the operator typed."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def room_ws_url(ws_base: str, agency: str, month: int, year: int) -> str:
    return f"{ws_base}/{quote(agency, safe='')}/{month}/{year}"


def split_rooms(rooms: list[RoomPlan], procs: int) -> list[list[RoomPlan]]:
    """Deal the rooms round-robin to at most `procs` workers, so each gets a similar load."""
    procs = max(1, min(procs, len(rooms)))
    shares: list[list[RoomPlan]] = [[] for _ in range(procs)]
    for position, room in enumerate(rooms):
        shares[position % procs].append(room)
    return shares
