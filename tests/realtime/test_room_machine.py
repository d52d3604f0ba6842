"""The live room as a state machine (hypothesis), against a model of the room.

Three sockets (two of Ana's, one of Luis's) on the real ASGI application (channels'
WebsocketCommunicator, the real database, relay and presence) take turns or race: adds, removals,
retries with the same scan id (also from another socket, and after the scan was removed or in an
earlier room), removals by id and by code, completions (also two at once, or racing a scan),
resumes from any `seq`, reconnects with `?since=`, and bad frames. After every step:

- every frame the server sent passes `realtime.wire.check_server_message`;
- each request got its answer (by `ref`), the one the model predicts for some order of the
  step's concurrent requests (each socket's own in the order it sent them), and the event log
  holds exactly that order's events;
- every socket received the room's events in `seq` order, without a gap or a repeat (after a
  resume: from the `since` it asked for, or one snapshot), and its view of the room, built only
  from what it received, equals the model: nothing acknowledged lost, nothing counted twice;
- the database (scans, tombstones, `last_seq`, the event log) equals the model;
- a bad frame gets an `error` and changes nothing.

Sizes come from tests/fuzzing.py (`FUZZ_PROFILE=long`: `make fuzz`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from inventory.models import Inventory, InventoryEvent, RemovedScan, Scan
from realtime import wire
from realtime.fanout import get_fanout
from realtime.routing import websocket_application
from tests.conftest import token_for
from tests.fuzzing import FUZZ_SETTINGS, SIZE, Tally

from .helpers import room_path

pytestmark = pytest.mark.django_db(transaction=True)

# Generous: the long campaign runs beside other test runs (a join once took over 5 s at load 15).
TIMEOUT = 15
# Short, so that resumes and reconnects cross it: a longer backlog is answered with a snapshot.
REPLAY_MAX = 6
# Codes that collide once trimmed and upper-cased ("a1" is "A1"), and some that do not.
CODES = ["A1", "a1", " A1 ", "B2", "b2", "VIN-3", "Ñandú-7", "🚗9"]
FIRST_YEAR = 2030


def code_key(code: str) -> str:
    """docs/protocol.md: a code counts once whatever its letter case, trimmed."""
    return code.strip().upper()


def room_of(number: int) -> tuple[int, int]:
    return 1 + number % 12, FIRST_YEAR + number // 12


# The model.


@dataclass
class Op:
    """One request of a step: sent on a socket with a ref, answered by one message (or unknown)."""

    socket: int
    kind: str  # add, remove, complete
    code: str | None = None
    uid: str | None = None
    ref: str = ""
    answer: tuple | None = None  # the outcome the server gave, None: no answer (socket closed)

    def frame(self) -> dict:
        if self.kind == "complete":
            return {"type": wire.INVENTORY_COMPLETED, "data": {}, "ref": self.ref}
        scan = {key: value for key, value in (("code", self.code), ("id", self.uid)) if value is not None}
        kind = wire.SCAN_ADDED if self.kind == "add" else wire.SCAN_REMOVED
        return {"type": kind, "data": {"scanData": scan}, "ref": self.ref}


@dataclass
class Model:
    """The room as the protocol promises it: scans by code key, tombstones, seq, completion."""

    room: int = 0
    scans: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (code, uid)
    seq: int = 0
    completed: bool = False
    history: list[dict] = field(default_factory=lambda: [{}])  # scans at each seq of this room
    # Every scan id sent, in any room of this run: uid -> (room, key, "stored" | "removed").
    uids: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def copy(self) -> Model:
        return Model(
            room=self.room,
            scans=dict(self.scans),
            seq=self.seq,
            completed=self.completed,
            history=list(self.history),
            uids=dict(self.uids),
        )

    def apply(self, op: Op) -> tuple[tuple, tuple | None]:
        """(the answer, the logged event or None) for `op`, changing the model as the server would."""
        if op.kind == "add":
            return self._add(op)
        if op.kind == "remove":
            return self._remove(op)
        if self.completed:
            return ("error", "inventory_completed"), None
        self.completed = True
        self._logged()
        return ("completed",), ("inventory_completed", None)

    def _add(self, op: Op):
        key = code_key(op.code)
        known = self.uids.get(op.uid)
        if known is not None:
            room, stored_key, state = known
            if room != self.room or stored_key != key:
                return ("error", "scan_id_conflict"), None
            if state == "stored":
                return ("replayed_add",), None
            return ("error", "scan_removed"), None
        if self.completed:
            return ("error", "inventory_completed"), None
        if key in self.scans:
            return ("error", "duplicate_scan"), None
        self.scans[key] = (op.code.strip(), op.uid)
        self.uids[op.uid] = (self.room, key, "stored")
        self._logged()
        return ("added", op.uid), ("scan_added", op.uid)

    def _remove(self, op: Op):
        if op.uid is not None:
            known = self.uids.get(op.uid)
            if known is None or known[0] != self.room:
                return ("error", "scan_not_found"), None
            _room, key, state = known
            if op.code is not None and code_key(op.code) != key:
                return ("error", "scan_id_conflict"), None
            if state == "removed":
                return ("replayed_remove",), None
        if self.completed:
            return ("error", "inventory_completed"), None
        if op.uid is None:
            key = code_key(op.code)
            if key not in self.scans:
                return ("error", "scan_not_found"), None
        _code, uid = self.scans.pop(key)
        self.uids[uid] = (self.room, key, "removed")
        self._logged()
        return ("removed", uid), ("scan_removed", uid)

    def _logged(self) -> None:
        self.seq += 1
        self.history.append(dict(self.scans))

    def next_room(self) -> None:
        self.room += 1
        self.scans, self.seq, self.completed, self.history = {}, 0, False, [{}]


def orders(ops: list[Op]):
    """Every order of the step's requests that keeps each socket's own in the order it sent them."""
    for order in itertools.permutations(ops):
        if all(
            [op for op in order if op.socket == s] == [op for op in ops if op.socket == s] for s in range(3)
        ):
            yield order


def explains(predicted: tuple, answer: tuple | None) -> bool:
    """Whether the server's answer is the one predicted.

    An answer may be missing only on a socket closed by the completion, and only for a refusal.
    The loser of a completion race may be answered with the winner's `inventory_completed`
    carrying its ref (its socket cannot tell whose completion the broadcast is: see
    docs/reliability.md, "Long fuzz campaign").
    """
    if answer is None:
        return predicted[0] == "error"
    if predicted == ("error", "inventory_completed") and answer == ("completed",):
        return True
    # Likewise the same scan id sent at once from two sockets of one user: the loser's request
    # may be answered by the winner's broadcast (then also by its `replayed` answer).
    if predicted == ("replayed_add",) and answer[0] == "added":
        return True
    if predicted == ("replayed_remove",) and answer[0] == "removed":
        return True
    return answer == predicted


# The sockets.


class Socket:
    """One socket and the room as it saw it: only from the messages the server sent it."""

    def __init__(self, number: int, user, token: str):
        self.number = number
        self.user = user
        self.token = token
        self.ws: WebsocketCommunicator | None = None
        self.room: int | None = None  # the room it last joined
        self.last_seq = 0
        self.view: dict[str, tuple[str, str]] = {}
        self.answers: dict[str, list[dict]] = {}  # ref -> the messages carrying it
        self.snapshots = 0
        self.presences = 0
        self.closed: int | None = None
        self.completed = False
        self.terminated = False
        self.after_close: list[dict] = []
        self.log: collections.deque = collections.deque(maxlen=12)  # what it received last, for failures

    def __repr__(self) -> str:
        return (
            f"<socket {self.number} room={self.room} seq={self.last_seq} closed={self.closed} "
            f"received={list(self.log)}>"
        )

    async def read(self, timeout: float = TIMEOUT) -> dict | int:
        """The next message (checked against protocol v1 and applied to the view), or the close code."""
        output = await self.ws.receive_output(timeout)
        if output["type"] == "websocket.close":
            self.closed = output.get("code", 1000)
            return self.closed
        assert output["type"] == "websocket.send" and output.get("text") is not None, output
        message = json.loads(output["text"], parse_constant=lambda constant: pytest.fail(constant))
        try:
            wire.check_server_message(message)
        except wire.WireError as error:
            pytest.fail(f"socket {self.number}: {error}: {message}")
        self.log.append((message["type"], message["data"].get("seq"), message.get("ref")))
        self.take(message)
        return message

    def take(self, message: dict) -> None:
        kind, data = message["type"], message["data"]
        if "ref" in message:
            self.answers.setdefault(message["ref"], []).append(message)
        if kind == wire.PRESENCE:
            self.presences += 1
        if kind in wire.PRESENCE_CHATTER or kind == wire.PONG:
            return
        if kind == wire.ERROR:
            assert "ref" in message, f"socket {self.number}: an error nobody asked for: {message}"
            return
        if kind == wire.SNAPSHOT:
            self.snapshots += 1
            self.view = {code_key(scan["code"]): (scan["code"], scan["id"]) for scan in data["scans"]}
            self.last_seq = data["seq"]
            return
        if kind == wire.SESSION_TERMINATED:
            assert self.completed, f"socket {self.number}: session_terminated before inventory_completed"
            self.terminated = True
            return
        if data.get("replayed"):
            assert "seq" not in data, message
            return
        seq = data["seq"]
        assert seq == self.last_seq + 1, (
            f"socket {self.number}: seq {seq} after {self.last_seq} "
            f"({'a gap' if seq > self.last_seq else 'a repeat'}): {message}"
        )
        self.last_seq = seq
        if kind == wire.INVENTORY_COMPLETED:
            self.completed = True
            return
        scan = data["scanData"]
        key = code_key(scan["code"])
        if kind == wire.SCAN_ADDED:
            assert key not in self.view, f"socket {self.number}: {scan['code']} counted twice: {message}"
            self.view[key] = (scan["code"], scan["id"])
        else:
            assert self.view.get(key, (None, None))[1] == scan["id"], (
                f"socket {self.number}: removed {scan} it never had: {self.view}"
            )
            del self.view[key]

    async def until(self, done, what: str) -> None:
        """Read until `done()`, or the socket closed; fail after TIMEOUT without progress."""
        while not done() and self.closed is None:
            try:
                await self.read()
            except TimeoutError:
                pytest.fail(f"socket {self.number}: nothing within {TIMEOUT} s while waiting for {what}")

    async def mark(self, marker: str) -> None:
        """Ping and read up to the pong: everything sent before it has been read."""
        await self.ws.send_json_to({"type": wire.PING, "data": {"timestamp": marker}, "ref": marker})
        await self.until(lambda: marker in self.answers, f"pong {marker}")

    async def finish(self) -> None:
        """After the server closed the socket: end the consumer, then read what it sent after the close."""
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.ws.disconnect(self.closed or 1000, timeout=TIMEOUT)
        while not self.ws.output_queue.empty():
            output = self.ws.output_queue.get_nowait()
            if output["type"] == "websocket.send":
                message = json.loads(output["text"])
                wire.check_server_message(message)
                self.after_close.append(message)
                if "ref" in message:
                    self.answers.setdefault(message["ref"], []).append(message)
        self.ws = None

    async def leave(self) -> None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self.ws.disconnect()
        self.ws = None


def outcome(message: dict | None) -> tuple | None:
    if message is None:
        return None
    kind, data = message["type"], message["data"]
    if kind == wire.ERROR:
        return ("error", data["code"])
    if kind == wire.INVENTORY_COMPLETED:
        return ("completed",)
    if kind == wire.SCAN_ADDED:
        return ("replayed_add",) if data.get("replayed") else ("added", data["scanData"]["id"])
    if kind == wire.SCAN_REMOVED:
        return ("replayed_remove",) if data.get("replayed") else ("removed", data["scanData"]["id"])
    return (kind,)


# Bad frames: each is answered with an `error` of one of these codes and changes nothing.
BAD_FRAMES = [
    ("{", {"invalid_json"}),
    ("[]", {"invalid_message"}),
    ('"scan_added"', {"invalid_message"}),
    ('{"type": "teleport", "data": {}, "ref": "bad"}', {"unknown_type"}),
    ('{"type": "scan_added", "data": "A1", "ref": "bad"}', {"invalid_data"}),
    ('{"type": "scan_added", "data": {"scanData": {"code": ""}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "scan_added", "data": {"scanData": {"code": "   "}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "scan_added", "data": {"scanData": {"code": "' + "X" * 65 + '"}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "scan_added", "data": {"scanData": {"code": "A\\u0000"}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "scan_added", "data": {"scanData": {"code": "C3", "id": "nope"}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "scan_added", "data": {"scanData": {"code": 7}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "scan_added", "data": {}, "ref": "bad"}', {"invalid", "invalid_data"}),
    ('{"type": "scan_added", "data": {"month": "13", "scanData": {"code": "C"}}}', {"wrong_room"}),
    ('{"type": "scan_added", "data": {"agency": "Ferrari", "scanData": {"code": "C"}}}', {"wrong_room"}),
    ('{"type": "scan_removed", "data": {"scanData": {}}, "ref": "bad"}', {"invalid", "invalid_data"}),
    ('{"type": "scan_removed", "data": {"scanData": {"code": "A1", "id": "x"}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "inventory_completed", "data": {"year": 1999}, "ref": "bad"}', {"wrong_room"}),
    ('{"type": "resume", "data": {"since": -1}, "ref": "bad"}', {"invalid_data"}),
    ('{"type": "resume", "data": {"since": "3"}, "ref": "bad"}', {"invalid_data"}),
    ('{"type": "ping", "data": {"timestamp": {"t": 1}}, "ref": "bad"}', {"invalid"}),
    ('{"type": "ping", "data": {}, "ref": ""}', {"invalid", "invalid_message"}),
]  # fmt: skip


class RoomMachine(RuleBasedStateMachine):
    """Sockets, the model, and a database to compare them with. Set `users` and `tally` first."""

    users: tuple = ()
    tally: Tally

    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = Model()
        self.refs = itertools.count()
        self.ids = itertools.count(1)
        Inventory.objects.all().delete()  # each run starts with no room (rooms are numbered per run)
        self.sockets = [Socket(number, user, token_for(user)) for number, user in enumerate(self.users)]
        self.tally.counts["runs"] += 1
        self._clock("start")

    def run(self, coroutine):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, 60))

    def teardown(self):
        self._clock("teardown")

        async def close():
            for socket in self.sockets:
                if socket.ws is not None:
                    await socket.leave()
            await get_fanout().aclose()

        try:
            self.run(close())
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=TIMEOUT))
        finally:
            self.loop.close()
            self._clock("start")
            self._since = None

    # Helpers.

    def path(self, room: int | None = None, since: int | None = None) -> str:
        month, year = room_of(self.model.room if room is None else room)
        return room_path(month=str(month), year=str(year), query="" if since is None else f"since={since}")

    def ref(self) -> str:
        return f"r{next(self.refs)}"

    def connected(self) -> list[Socket]:
        return [socket for socket in self.sockets if socket.ws is not None]

    def one(self, number: int, *, online: bool = True) -> Socket:
        """The `number`th socket (round the list) among those open, or those closed."""
        sockets = [socket for socket in self.sockets if (socket.ws is not None) == online]
        return sockets[number % len(sockets)]

    def anyone_online(self) -> bool:
        return any(socket.ws is not None for socket in self.sockets)

    def anyone_offline(self) -> bool:
        return any(socket.ws is None for socket in self.sockets)

    def step(self, name: str) -> None:
        self.tally.counts["steps"] += 1
        self.tally.counts[f"step {name}"] += 1
        self._clock(name)

    def _clock(self, name: str) -> None:
        now = time.monotonic()
        if getattr(self, "_since", None) is not None:
            self.tally.seconds[self._since[0]] += now - self._since[1]
        self._since = (name, now)

    def any_seq(self, data) -> int:
        """A seq from two past the room's down to 0 (drawn the same way whatever the room holds)."""
        return max(0, self.model.seq + 2 - data.draw(st.integers(0, 12), label="seqs back"))

    def expect_replay_or_snapshot(self, since: int) -> str:
        seq = self.model.seq
        if since == seq:
            return "nothing"
        return "replay" if since < seq and seq - since <= REPLAY_MAX else "snapshot"

    def open(self, socket: Socket, path: str) -> WebsocketCommunicator:
        headers = [(b"authorization", f"Token {socket.token}".encode())]
        return WebsocketCommunicator(websocket_application, path, headers=headers)

    async def _join(self, socket: Socket, since: int | None) -> None:
        socket.ws = self.open(socket, self.path(since=since))
        connected, _ = await socket.ws.connect(timeout=TIMEOUT)
        assert connected
        socket.room, socket.closed, socket.completed, socket.terminated = self.model.room, None, False, False
        if since is None or since > self.model.seq:
            socket.last_seq, socket.view = self.model.seq, dict(self.model.history[-1])
        else:
            socket.last_seq, socket.view = since, dict(self.model.history[since])
        presences = socket.presences
        await socket.mark(self.ref())
        assert socket.presences == presences + 1, "no presence greeting"

    def check_backlog(self, socket: Socket, expected: str, snapshots_before: int) -> None:
        """The socket stands where the room does: by the events after its seq, or one snapshot."""
        assert socket.snapshots - snapshots_before == (expected == "snapshot"), (socket, expected)
        assert socket.last_seq == self.model.seq, (socket, self.model.seq)
        assert socket.view == self.model.scans, (socket.view, self.model.scans)
        self.tally.counts[f"caught up with {expected}"] += 1

    # Rules.

    @initialize()
    def everyone_joins(self):
        self.step("connect")
        for socket in self.sockets:
            self.run(self._join(socket, None))

    @precondition(anyone_offline)
    @rule(number=st.integers(0, 2), since=st.sampled_from(["none", "last", "any", "any"]), data=st.data())
    def connect(self, number, since, data):
        """Join the current room: fresh, from the last seq this socket saw, or from any seq."""
        socket = self.one(number, online=False)
        self.step("connect")
        start = self.any_seq(data)
        if since == "last" and socket.room == self.model.room:
            start = socket.last_seq
        elif since == "none":
            start = None
        expected = "nothing" if start is None else self.expect_replay_or_snapshot(start)
        snapshots = socket.snapshots
        self.run(self._join(socket, start))
        self.check_backlog(socket, expected, snapshots)
        self.tally.counts["joins"] += 1

    @precondition(anyone_online)
    @rule(number=st.integers(0, 2))
    def disconnect(self, number):
        socket = self.one(number)
        self.step("disconnect")
        self.run(socket.leave())

    @precondition(anyone_online)
    @rule(number=st.integers(0, 2), data=st.data())
    def resume(self, number, data):
        """Ask for everything after any seq: the events after it, in order, or one snapshot."""
        socket = self.one(number)
        self.step("resume")
        since = self.any_seq(data)
        expected = self.expect_replay_or_snapshot(since)
        if since <= self.model.seq:
            socket.last_seq, socket.view = since, dict(self.model.history[since])
        ref, snapshots = self.ref(), socket.snapshots

        async def resume():
            await socket.ws.send_json_to({"type": wire.RESUME, "data": {"since": since}, "ref": ref})
            await socket.mark(self.ref())

        self.run(resume())
        answered = socket.answers.get(ref, [])
        if expected == "replay":
            assert [m["data"]["seq"] for m in answered] == list(range(since + 1, self.model.seq + 1)), (
                answered
            )
        else:
            assert len(answered) == (expected == "snapshot"), (since, self.model.seq, answered)
        self.check_backlog(socket, expected, snapshots)

    @precondition(anyone_online)
    @rule(number=st.integers(0, 2), frame=st.sampled_from(BAD_FRAMES))
    def bad_input(self, number, frame):
        """A frame the protocol refuses: one `error`, the socket stays open, nothing changes."""
        socket = self.one(number)
        self.step("bad input")
        text, codes = frame
        marker = self.ref()

        errors = self.run(self._bad(socket, text, marker))
        assert len(errors) == 1 and errors[0]["data"]["code"] in codes, (text, errors)
        assert socket.closed is None, (text, socket.closed)
        self.tally.counts["bad frames answered"] += 1

    async def _bad(self, socket: Socket, text: str, marker: str) -> list[dict]:
        """Send the frame, then a ping; the errors that came before its pong."""
        errors: list[dict] = []
        original = socket.take

        def take(message):
            if message["type"] == wire.ERROR and message.get("ref") in (None, "bad", "r"):
                errors.append(message)
                return
            original(message)

        socket.take = take
        try:
            await socket.ws.send_to(text_data=text)
            await socket.mark(marker)
        finally:
            socket.take = original
        return errors

    @precondition(anyone_online)
    @rule(
        plan=st.lists(
            st.tuples(
                st.integers(0, 2),
                st.sampled_from(
                    ["add", "add", "add", "retry", "retry", "conflict", "remove_id", "remove_code"]
                ),
                st.sampled_from(CODES),
            ),
            min_size=1,
            max_size=3,
        ),
        data=st.data(),
    )
    def requests(self, plan, data):
        """Adds, retries and removals from one to three sockets at once (racing each other)."""
        ops = [self.make_op(self.one(number).number, kind, code, data) for number, kind, code in plan]
        self.step("requests")
        self.exchange(ops)

    def make_op(self, number: int, kind: str, code: str, data) -> Op:
        sent = sorted(self.model.uids)
        pick = data.draw(st.integers(0, 1000), label="which id")
        with_code = data.draw(st.booleans(), label="with its code")
        if kind in ("retry", "conflict", "remove_id") and sent:
            uid = sent[pick % len(sent)]
            _room, key, _state = self.model.uids[uid]
            if kind == "retry":
                # The same id and code as first sent (in this room, or an earlier one).
                code = next(c for c in CODES if code_key(c) == key)
            elif kind == "conflict" and code_key(code) == key:
                code = "Z" + code
            if kind == "remove_id":
                return Op(number, "remove", code=code if with_code else None, uid=uid, ref=self.ref())
            return Op(number, "add", code=code, uid=uid, ref=self.ref())
        if kind == "remove_code":
            return Op(number, "remove", code=code, ref=self.ref())
        return Op(number, "add", code=code, uid=self.new_id(), ref=self.ref())

    def new_id(self) -> str:
        # Numbered, not random: the same draws make the same requests when Hypothesis replays a run.
        return str(uuid.UUID(int=next(self.ids)))

    @precondition(anyone_online)
    @rule(
        first=st.integers(0, 2),
        second=st.one_of(st.none(), st.integers(0, 2)),
        scan=st.one_of(st.none(), st.tuples(st.integers(0, 2), st.sampled_from(CODES))),
    )
    def complete(self, first, second, scan):
        """Complete the inventory, maybe from two sockets at once, maybe racing a scan."""
        self.step("complete")
        ops = [Op(self.one(first).number, "complete", ref=self.ref())]
        if second is not None:
            ops.append(Op(self.one(second).number, "complete", ref=self.ref()))
        if scan is not None:
            ops.insert(
                0, Op(self.one(scan[0]).number, "add", code=scan[1], uid=self.new_id(), ref=self.ref())
            )
        self.exchange(ops)
        assert self.model.completed
        old = self.model.room
        self.model.next_room()
        # The completed room refuses a newcomer: its error, then 4409.
        self.run(self._refused(old))

    async def _refused(self, room: int) -> None:
        ws = self.open(self.sockets[0], self.path(room))
        try:
            assert (await ws.connect(timeout=TIMEOUT))[0]
            error = wire.check_server_message(await ws.receive_json_from(timeout=TIMEOUT))
            assert error["type"] == wire.ERROR and error["data"]["code"] == "inventory_completed", error
            closed = await ws.receive_output(timeout=TIMEOUT)
            assert closed == {"type": "websocket.close", "code": wire.CLOSE_COMPLETED}, closed
            self.tally.counts["joins refused (completed)"] += 1
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await ws.disconnect()

    # The exchange: send, read, compare with the model and the database.

    def exchange(self, ops: list[Op]) -> None:
        senders = {op.socket for op in ops}

        async def send_and_read():
            for op in ops:
                await self.sockets[op.socket].ws.send_json_to(op.frame())
            self.tally.counts["requests sent"] += len(ops)
            for number in sorted(senders):
                socket = self.sockets[number]
                refs = [op.ref for op in ops if op.socket == number]
                await socket.until(
                    lambda s=socket, r=refs: all(ref in s.answers for ref in r), f"answers {refs}"
                )

        self.run(send_and_read())
        # Whatever a closed socket's consumer still sent, and its end.
        self.run(self._finish_closed())
        events = self.logged_after(self.model.seq)
        for op in ops:
            answers = self.sockets[op.socket].answers.get(op.ref, [])
            # One answer; or, for the loser of a race of identical requests, the winner's broadcast
            # and then its own refusal or `replayed` (see `explains`).
            assert len(answers) <= 1 or (
                len(answers) == 2 and "seq" in answers[0]["data"] and "seq" not in answers[1]["data"]
            ), f"{op} answered {len(answers)} times: {answers}"
            op.answer = outcome(answers[0] if answers else None)
            unanswered_ok = self.sockets[op.socket].closed == wire.CLOSE_NORMAL
            assert op.answer is not None or unanswered_ok, f"no answer to {op} on an open socket"
        self.model = self.linearize(ops, events)
        for op in ops:
            self.tally.counts[f"answer {op.answer[0] if op.answer else 'none (socket closed)'}"] += 1
        self.run(self._catch_up())

    async def _finish_closed(self) -> None:
        for socket in self.sockets:
            if socket.ws is not None and socket.closed is not None:
                # Only a completion closes a socket here: after inventory_completed and session_terminated.
                assert socket.closed == wire.CLOSE_NORMAL and socket.completed and socket.terminated, socket
                await socket.finish()

    async def _catch_up(self) -> None:
        """Every socket still open reads up to the room's last seq, and sees what the model holds."""
        for socket in self.connected():
            await socket.until(lambda s=socket: s.last_seq >= self.model.seq, "events")
            assert socket.view == self.model.scans, (socket, socket.view, self.model.scans)
            if self.model.completed:
                await socket.until(lambda: False, "the close after completion")
                assert socket.closed == wire.CLOSE_NORMAL and socket.completed and socket.terminated, socket
                await socket.finish()
                continue
            assert socket.last_seq == self.model.seq, (socket, self.model.seq)
            assert socket.view == self.model.scans, (socket.number, socket.view, self.model.scans)

    def logged_after(self, seq: int) -> list[tuple[str, str | None]]:
        inventory = self.inventory()
        if inventory is None:
            return []
        rows = InventoryEvent.objects.filter(inventory=inventory, seq__gt=seq).order_by("seq")
        return [(row.type, (row.facts.get("scan") or {}).get("id")) for row in rows]

    def linearize(self, ops: list[Op], events: list) -> Model:
        """The model after the one order of `ops` that explains every answer and the event log."""
        tried = []
        for order in orders(ops):
            model = self.model.copy()
            logged, answers = [], {}
            for op in order:
                answer, event = model.apply(op)
                answers[op.ref] = answer
                if event is not None:
                    logged.append(event)
            # An answer may be missing only on a socket closed by the completion, and only for a refusal.
            if logged == events and all(
                explains(answers[op.ref], op.answer) or self.settled_by_twin(op, ops, answers) for op in ops
            ):
                return model
            tried.append((logged, answers))
        pytest.fail(
            "no order of the requests explains what happened:\n"
            f"  requests: {ops}\n  logged: {events}\n  tried: {tried}"
        )

    def settled_by_twin(self, op: Op, ops: list[Op], answers: dict) -> bool:
        """Whether `op` was answered by the broadcast of the same change another socket of its user
        asked for in the same step (docs/protocol.md: the first answer with a ref settles it).

        The broadcast names the scan by id (or, for a request without one, by code): `op` named it
        so too, and another request of the step made exactly that change.
        """
        if op.answer is None or op.answer[0] not in ("added", "removed"):
            return False
        user = self.sockets[op.socket].user
        for other in ops:
            if other.socket == op.socket or self.sockets[other.socket].user != user:
                continue
            if answers[other.ref] != op.answer or other.answer != op.answer:
                continue
            if op.uid is not None and op.uid == op.answer[1]:
                return True
            if op.uid is None and op.code is not None and other.code is not None:
                return code_key(op.code) == code_key(other.code)
        return False

    def inventory(self):
        month, year = room_of(self.model.room)
        return Inventory.objects.filter(agency__name="Alfa Romeo", month=month, year=year).first()

    # After every step.

    @invariant()
    def database_matches_the_model(self):
        inventory = self.inventory()
        if inventory is None:
            assert self.model.seq == 0 and not self.model.scans
            return
        stored = {
            code_key(code): (code, str(uid)) for code, uid in inventory.scans.values_list("code", "uid")
        }
        assert stored == self.model.scans, (stored, self.model.scans)
        assert inventory.last_seq == self.model.seq, (inventory.last_seq, self.model.seq)
        seqs = list(
            InventoryEvent.objects.filter(inventory=inventory).values_list("seq", flat=True).order_by("seq")
        )
        assert seqs == list(range(1, self.model.seq + 1)), seqs
        removed = {
            str(uid) for uid in RemovedScan.objects.filter(inventory=inventory).values_list("uid", flat=True)
        }
        expected = {
            uid
            for uid, (room, _key, state) in self.model.uids.items()
            if room == self.model.room and state == "removed"
        }
        assert removed == expected, (removed, expected)
        assert inventory.is_open != self.model.completed
        assert Scan.objects.filter(uid__in=list(self.model.uids)).count() == sum(
            1 for _room, _key, state in self.model.uids.values() if state == "stored"
        )


@pytest.fixture(autouse=True)
def no_limits(settings):
    """Thousands of frames and connects a minute from two users; backlogs past 6 events get a snapshot."""
    settings.REALTIME = {
        **settings.REALTIME,
        "RATE_LIMIT_MAX_MESSAGES": 0,
        "CONNECT_RATE_PER_USER": 0,
        "REPLAY_MAX_EVENTS": REPLAY_MAX,
    }
    settings.INVENTORY_OPEN_MONTHS_AHEAD = 12 * 70


def test_the_room_keeps_its_promises_whatever_the_sockets_do(ana, luis):
    tally = Tally("room-machine")
    RoomMachine.users = (ana, ana, luis)
    RoomMachine.tally = tally
    outcome = "failed"
    try:
        run_state_machine_as_test(
            RoomMachine,
            settings=hypothesis_settings(
                FUZZ_SETTINGS, max_examples=SIZE["room_examples"], stateful_step_count=SIZE["room_steps"]
            ),
        )
        outcome = "passed"
    except BaseException as failure:
        tally.found.append(str(failure)[:4000])
        raise
    finally:
        path = tally.write(outcome, failures=0 if outcome == "passed" else 1, found=tally.found)
        print(f"\nFUZZ room machine: {dict(tally.counts)} -> {path}")
