"""Protocol v1's `npm run test:websocket` against a running deployment: one PASS or FAIL line per check.

It works in a room nobody has opened yet (next month's by default, or the latest earlier one the
server lets it open), removes the scan it adds, deletes the inventories it opened when its token
may (the `delete_inventory` permission), and completes its room only when asked to.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from realtime.wire import CLOSE_COMPLETED
from tools.liveclient import CheckFailure, LiveClient, Refused

from . import api
from .plan import room_ws_url
from .publisher import iso_now
from .shapes import Room, room_problems


@dataclass
class SmokeSettings:
    http_url: str
    ws_base: str
    token: str
    agency: str
    month: int | None = None
    year: int | None = None
    # The months the server lets a client open, newest first (inventory.periods.openable_months).
    months: tuple[tuple[int, int], ...] = ()
    check_completion: bool = False
    timeout: float = 5.0


@dataclass
class SmokeOutcome:
    lines: list[tuple[str, str, str]] = field(default_factory=list)
    data_left: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for status, _, _ in self.lines if status == "FAIL")


CHECKS = [
    "connection",
    "user_joined -> presence",
    "user_joined broadcast",
    "scan_added broadcast",
    "scan_removed broadcast",
    "room isolation",
    "ping -> pong",
    "error: non-JSON frame",
    "error: unknown type",
    "inventory_completed -> session_terminated",
]


class SmokeRun:
    """Runs the checks in order; each reports PASS or FAIL with a reason through `report`."""

    def __init__(self, settings: SmokeSettings, report: Callable[[str, str, str], None]):
        self.settings = settings
        self._report = report
        self.outcome = SmokeOutcome()
        self.peers: list[LiveClient] = []
        self.room: Room | None = None
        self.other_room: Room | None = None
        self.scan_code: str | None = None  # set while our scan is stored
        self.opened_rooms: list[Room] = []
        self.new_rooms: set[str] = set()  # keys of the rooms whose inventory this run opened
        self.completed = False

    def report(self, status: str, name: str, detail: str) -> None:
        self.outcome.lines.append((status, name, detail))
        self._report(status, name, detail)

    async def run(self) -> SmokeOutcome:
        try:
            await self._run_checks()
        finally:
            await asyncio.gather(*(peer.close() for peer in self.peers))
            await self._clean_up()
        return self.outcome

    async def _run_checks(self) -> None:
        try:
            a, self.room = await self._open_free_room(exclude=None)
        except CheckFailure as exc:
            self.report("FAIL", "connection", str(exc))
            for name in CHECKS[1:]:
                self.report("FAIL", name, "not run: no connection")
            return
        self.report("PASS", "connection", f"accepted in {self.room.key}; presence received")

        await self._check("user_joined -> presence", self._user_joined_presence, a)
        b = await self._check("user_joined broadcast", self._user_joined_broadcast, a)
        try:
            c, self.other_room = await self._open_free_room(exclude=self.room)
        except CheckFailure as exc:
            c = None
            isolation_problem = f"could not open a second room: {exc}"
        if b is None:
            self.report("FAIL", "scan_added broadcast", "not run: no second connection")
            self.report("FAIL", "scan_removed broadcast", "not run: no second connection")
        else:
            added = await self._check("scan_added broadcast", self._scan_added, a, b)
            if added:
                await self._check("scan_removed broadcast", self._scan_removed, a, b)
            else:
                self.report("FAIL", "scan_removed broadcast", "not run: no scan was added")
        if c is None:
            self.report("FAIL", "room isolation", isolation_problem)
        else:
            await self._check("room isolation", self._isolation, c)
        await self._check("ping -> pong", self._ping_pong, a)
        await self._check("error: non-JSON frame", self._error_path, a, "this is not JSON {")
        await self._check("error: unknown type", self._error_path, a, {"type": "no_such_type", "data": {}})
        if self.settings.check_completion:
            await self._check("inventory_completed -> session_terminated", self._completion, a, b)
        else:
            self.report(
                "SKIP",
                "inventory_completed -> session_terminated",
                f"pass --check-completion to run it; it completes {self.room.key}, which the API cannot undo",
            )

    async def _check(self, name: str, check, *args):
        try:
            result = await check(*args)
        except CheckFailure as exc:
            self.report("FAIL", name, str(exc))
            return None
        except Exception as exc:  # a broken socket or an unexpected shape: still one FAIL line
            self.report("FAIL", name, f"{type(exc).__name__}: {exc}")
            return None
        detail, value = result if isinstance(result, tuple) else (result, True)
        self.report("PASS", name, detail)
        return value

    # Rooms.

    def _candidates(self, exclude: Room | None) -> list[tuple[int, int]]:
        chosen = self.settings.month, self.settings.year
        if None not in chosen and exclude is None:
            return [chosen]
        months = list(self.settings.months)
        return [m for m in months if exclude is None or (m[0], m[1]) != (exclude.month, exclude.year)]

    async def _open_free_room(self, exclude: Room | None) -> tuple[LiveClient, Room]:
        """Connect to the first candidate room not opened yet, else the first not completed (4409)."""
        candidates = self._candidates(exclude)
        existing = set(await self._inventories())
        unopened = [m for m in candidates if m not in existing]
        completed = []
        for month, year in unopened + [m for m in candidates if m in existing]:
            url = room_ws_url(self.settings.ws_base, self.settings.agency, month, year)
            try:
                peer = await LiveClient.open(
                    url, self.settings.token, timeout=self.settings.timeout, background=True
                )
            except Refused as exc:
                if exc.close_code == CLOSE_COMPLETED:
                    completed.append(f"{month}/{year}")
                    continue
                raise
            self.peers.append(peer)
            presence = peer.presence["data"]
            room = Room(presence.get("agency", self.settings.agency), month, year)
            self.opened_rooms.append(room)
            if (month, year) not in existing:
                self.new_rooms.add(room.key)
            return peer, room
        raise CheckFailure(f"every candidate room is completed ({', '.join(completed)}): pass --month/--year")

    async def _inventories(self) -> dict[tuple[int, int], int]:
        """The agency's inventories the token's user sees: (month, year) -> id."""
        try:
            return await asyncio.to_thread(
                api.inventories_of, self.settings.http_url, self.settings.token, agency=self.settings.agency
            )
        except api.ApiError:
            return {}  # the socket will say what is wrong

    def _room_data(self, room: Room) -> dict[str, Any]:
        return {"agency": room.agency, "month": str(room.month), "year": room.year}

    # Checks.

    async def _user_joined_presence(self, a: LiveClient) -> str:
        await a.send_message(
            {
                "type": "user_joined",
                "data": {**self._room_data(self.room), "userId": "smoke", "userName": "ws_smoke"},
            }
        )
        presence = await a.expect("presence", timeout=self.settings.timeout, skip=frozenset({"user_joined"}))
        users = presence.get("data", {}).get("users")
        if not isinstance(users, list) or not users:
            raise CheckFailure(f"presence lists no users: {presence.get('data')}")
        return f"presence lists {len(users)} user(s)"

    async def _user_joined_broadcast(self, a: LiveClient) -> tuple[str, LiveClient]:
        b = await LiveClient.open(
            room_ws_url(self.settings.ws_base, self.settings.agency, self.room.month, self.room.year),
            self.settings.token,
            timeout=self.settings.timeout,
            background=True,
        )
        self.peers.append(b)
        # One token is one user, and a user's second connection is no news to the room: the
        # server announces only a user's first one (docs/protocol.md). The first connection's own
        # `user_joined` shows the broadcast; the room's presence must count both connections.
        joined = next((m for m in a.received if m.get("type") == "user_joined"), None)
        if joined is None:
            joined = await a.expect("user_joined", timeout=self.settings.timeout)
        data = joined.get("data", {})
        problems = [p for p in room_problems(data, self.room) if not p.startswith("userName")]
        if problems:
            raise CheckFailure("; ".join(problems))
        await a.send_message({"type": "user_joined", "data": self._room_data(self.room)})
        presence = await a.expect("presence", timeout=self.settings.timeout, skip=frozenset({"user_joined"}))
        counts = [user.get("connections") for user in presence.get("data", {}).get("users", [])]
        if sum(count for count in counts if isinstance(count, int)) < 2:
            raise CheckFailure(f"presence does not count the second connection: {presence.get('data')}")
        return f"user_joined broadcast (userId {data.get('userId')}); presence counts both connections", b

    async def _scan_added(self, a: LiveClient, b: LiveClient) -> str:
        code = f"SMOKE-{uuid.uuid4().hex[:12].upper()}"
        scan_id = str(uuid.uuid4())
        await a.send_message(
            {
                "type": "scan_added",
                "data": {
                    **self._room_data(self.room),
                    "userId": "smoke",
                    "userName": "ws_smoke",
                    "scanData": {"code": code, "user": "ws_smoke", "timestamp": _now(), "id": scan_id},
                },
            }
        )
        own = await a.expect("scan_added", timeout=self.settings.timeout)
        self.scan_code = code
        other = await b.expect("scan_added", timeout=self.settings.timeout)
        for who, message in (("sender", own), ("other client", other)):
            problems = room_problems(message.get("data", {}), self.room, code=code)
            if problems:
                raise CheckFailure(f"{who}: " + "; ".join(problems))
        seq = own["data"].get("seq")
        return f"both clients got {code} with protocol v1's fields (seq {seq})"

    async def _scan_removed(self, a: LiveClient, b: LiveClient) -> str:
        code = self.scan_code
        await a.send_message(
            {
                "type": "scan_removed",
                "data": {**self._room_data(self.room), "scanData": {"code": code}},
            }
        )
        own = await a.expect("scan_removed", timeout=self.settings.timeout)
        self.scan_code = None
        other = await b.expect("scan_removed", timeout=self.settings.timeout)
        for who, message in (("sender", own), ("other client", other)):
            problems = room_problems(message.get("data", {}), self.room, code=code)
            if problems:
                raise CheckFailure(f"{who}: " + "; ".join(problems))
        return f"both clients got the removal of {code}"

    async def _isolation(self, c: LiveClient) -> str:
        await asyncio.sleep(min(0.5, self.settings.timeout))
        leaked = [t for t in c.types_received() if t in ("scan_added", "scan_removed")]
        if leaked:
            raise CheckFailure(f"{self.other_room.key} received {', '.join(leaked)} from {self.room.key}")
        return f"{self.other_room.key} received none of {self.room.key}'s scans"

    async def _ping_pong(self, a: LiveClient) -> str:
        stamp = _now()
        await a.send_message({"type": "ping", "data": {"timestamp": stamp}})
        pong = await a.expect("pong", timeout=self.settings.timeout)
        echoed = pong.get("data", {}).get("timestamp")
        if echoed != stamp:
            raise CheckFailure(f"pong timestamp {echoed!r} does not echo {stamp!r}")
        return "pong echoed the timestamp"

    async def _error_path(self, a: LiveClient, frame) -> str:
        await (a.send_raw(frame) if isinstance(frame, str) else a.send_message(frame))
        error = await a.expect("error", timeout=self.settings.timeout)
        data = error.get("data", {})
        if not isinstance(data.get("message"), str) or not data["message"]:
            raise CheckFailure(f"error without a message: {data}")
        await a.send_message({"type": "ping", "data": {"timestamp": "still-open"}})
        try:
            await a.expect("pong", timeout=self.settings.timeout)
        except CheckFailure as exc:
            raise CheckFailure(f"the connection did not stay open: {exc}") from None
        return f"error {data.get('code', '')!s} ({data['message'][:60]}); connection stayed open"

    async def _completion(self, a: LiveClient, b: LiveClient | None) -> str:
        await a.send_message({"type": "inventory_completed", "data": self._room_data(self.room)})
        completed = await a.expect("inventory_completed", timeout=self.settings.timeout)
        data = completed.get("data", {})
        missing = [n for n in ("completedBy", "inventoryId", "message", "timestamp") if n not in data]
        if missing:
            raise CheckFailure(f"inventory_completed lacks {', '.join(missing)}")
        self.completed = True
        await a.expect("session_terminated", timeout=self.settings.timeout)
        if await a.wait_close(timeout=self.settings.timeout) is None:
            raise CheckFailure("the server did not close the socket after session_terminated")
        if b is not None:
            await b.expect("inventory_completed", timeout=self.settings.timeout)
            await b.expect("session_terminated", timeout=self.settings.timeout)
            if await b.wait_close(timeout=self.settings.timeout) is None:
                raise CheckFailure("the server did not close the other client's socket")
        return f"completed by {data['completedBy']}; session_terminated, then closed ({a.close_code})"

    # Cleanup.

    async def _clean_up(self) -> None:
        if self.scan_code is not None:
            try:
                await asyncio.to_thread(
                    api.scan_delete,
                    self.settings.http_url,
                    self.settings.token,
                    agency=self.room.agency,
                    month=self.room.month,
                    year=self.room.year,
                    code=self.scan_code,
                )
            except api.ApiError as exc:
                self.outcome.data_left.append(
                    f"scan {self.scan_code} in {self.room.key} (removal failed: {exc})"
                )
            else:
                self.scan_code = None
        for room in self.opened_rooms:
            if room.key not in self.new_rooms:
                if room is self.room:
                    self.outcome.data_left.append(f"the event log of {room.key} (the scan added and removed)")
                continue
            try:
                inventory_id = (await self._inventories()).get((room.month, room.year))
                if inventory_id is not None:
                    await asyncio.to_thread(
                        api.inventory_delete, self.settings.http_url, self.settings.token, inventory_id
                    )
            except api.ApiError as exc:
                state = "completed" if self.completed and room is self.room else "open, no scans"
                self.outcome.data_left.append(f"inventory {room.key}: {state} (deleting it failed: {exc})")


def _now() -> str:
    return iso_now()
