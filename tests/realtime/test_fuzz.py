"""Fuzz the live room's socket with hypothesis, in-process against the real ASGI application.

Every example opens a real connection (channels' WebsocketCommunicator), sends a short session
of random or mutated frames and checks, after each one: the server answers it with an `error`
(message, code, timestamp) or with the protocol message that type calls for, in the shapes
protocol v1 declares (`realtime.wire`, checked with `check_server_message`); the valid frames are
generated from the same declaration; nothing leaks (`internal_error`, a non-UTF-8 or non-JSON frame, an
exception from the application); the socket stays open unless the frame was over 64 KiB (1009)
or completed the inventory (1000); the database holds only valid scans, exactly the ones the
room was told about.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import typing
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Count
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from inventory.models import Inventory, Scan
from realtime import wire
from realtime import wire as protocol  # the type names and close codes
from realtime.conf import realtime_settings
from tests.conftest import token_for as token_for_sync

from .helpers import connect_raw, joined, room_path, token_of

pytestmark = pytest.mark.django_db(transaction=True)

MAX_FRAME = realtime_settings.MAX_FRAME_BYTES
POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
TIMEOUT = 5
FUZZ = hypothesis_settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
STATS: Counter = Counter()

# The oracle is protocol v1's declaration (realtime.wire), not the builders under test. Errors that
# answer a client's frame never say the server failed.
FAULTS = {"internal_error", "database_unavailable", "unavailable"}
# Refusals at connect: data.code -> close code (docs/protocol.md).
REFUSALS = {
    "unauthenticated": protocol.CLOSE_UNAUTHENTICATED,
    "agency_not_found": protocol.CLOSE_NOT_FOUND,
    "invalid": protocol.CLOSE_NOT_FOUND,
    "month_not_openable": protocol.CLOSE_NOT_FOUND,
    "inventory_completed": protocol.CLOSE_COMPLETED,
    "room_full": protocol.CLOSE_ROOM_FULL,
}
ANSWERS = {
    "ping": {"pong"},
    "user_joined": {"presence"},
    "scan_added": {"scan_added"},
    "scan_removed": {"scan_removed"},
    "inventory_completed": {"inventory_completed"},
    "resume": {"scan_added", "scan_removed", "snapshot"},
    None: set(),
}
# `presence` answers a client's user_joined here, so it is not skipped.
CHATTER = wire.PRESENCE_CHATTER - {wire.PRESENCE}
SERVER_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def echoable(value) -> bool:
    """docs/protocol.md: a ping's timestamp comes back only as text of up to 64 characters or a
    finite number; anything else is refused with `invalid` (so no echo can break an answer)."""
    if isinstance(value, str):
        return len(value) <= 64 and all(not 0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def ping_refused(frame: Frame) -> bool:
    """A ping whose timestamp cannot be echoed: the answer is `invalid`, not a pong."""
    data = frame.message.get("data") if isinstance(frame.message, dict) else None
    if not isinstance(data, dict) or data.get("timestamp") in (None, ""):
        return False
    return data["timestamp"] is DEEP or not echoable(data["timestamp"])


# Frames.

NOT_JSON = object()
DEEP = object()  # stands for a value nested too deep to parse in the test


def nesting_depth(text: str) -> int:
    """How deep [ and { nest outside strings (without parsing: json.loads may give up first)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@dataclass
class Frame:
    text: str | None = None
    data: bytes | None = None
    size: int = 0
    depth: int = 0
    message: object = NOT_JSON

    @classmethod
    def of(cls, payload: str | bytes) -> Frame:
        if isinstance(payload, bytes):
            frame = cls(data=payload, size=len(payload))
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                return frame
        else:
            frame = cls(text=payload, size=len(payload.encode("utf-8", "surrogatepass")))
            text = payload
        if frame.size <= MAX_FRAME:
            frame.depth = nesting_depth(text)
            with contextlib.suppress(ValueError, RecursionError):
                frame.message = json.loads(text)
        return frame

    @property
    def ref_valid(self) -> bool:
        """No `ref`, or one as protocol v1 allows: text of 1 to REF_MAX_CHARS printable characters."""
        ref = self.message.get("ref") if isinstance(self.message, dict) else None
        if ref is None:
            return True
        return isinstance(ref, str) and 1 <= len(ref) <= wire.REF_MAX_CHARS and ref.isprintable()

    @property
    def kind(self) -> str | None:
        """The client type the server will dispatch this frame to, or None if it is refused."""
        message = self.message
        if self.size > MAX_FRAME or not isinstance(message, dict):
            return None
        kind = message.get("type")
        if not isinstance(kind, str) or kind not in protocol.CLIENT_TYPES or not self.ref_valid:
            return None
        data = message.get("data")
        if isinstance(data, dict) or (data is None and kind == protocol.PING):
            return kind
        return None


# Strategies.

TRICKY = [
    "", " ", "\t\n ", "\x00", "A\x00B", "\x7f", "\u200b", "\ufeff", "\u2028", "\ud800", "x\udfffx",
    "²", "١٠", "10.0", "1e3", "-1", "0", "13", "00", "010", "2025", "99999", "NaN", "null", "[]",
    "'; DROP TABLE inventory_scan;--", "<script>alert(1)</script>", "../../etc/passwd", "%00",
    "%s%s%s%n", "{0}{1}", "A" * 64, "A" * 65, " " + "B" * 64 + " ", "🚗" * 64, "e\u0301" * 32,
    "2025-01-15T10:30:00.000Z", "2025-01-15", "10:30", "2025-02-30T00:00:00Z",
    "2025-13-01T00:00:00", "2025-01-01T00:00:00+99:00", "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999Z",
    "00000000-0000-0000-0000-000000000000", "6F9619FF8B86D011B42D00C04FC964FF",
    0, -1, 1, 2**31, 2**63, 2**64, -(2**63), 10**30, 1.5, -0.0, 1e308, True, False, None,
]  # fmt: skip
CODES = ["A1", "A2", "VIN3FA6P0H77HR123456", " A1 ", "\tA2\n", "Ñandú-7", "🚗🚙", "a" * 64]
SCAN_IDS = [str(uuid.UUID(int=n)) for n in range(1, 4)]
AGENCIES = ["Alfa Romeo", "alfa-romeo", "ALFA ROMEO", "  Alfa Romeo ", "Peugeot Querétaro", "Ferrari"]
# Values for a field of that name, right and wrong, beside anything else that fits in JSON.
FIELD_VALUES = {
    "agency": [*AGENCIES, 42, None, "", "Alfa\x00Romeo"],
    "month": ["10", "11", "13", "0", 11, "octubre", "", None, "²", "١٠", 10.0, " 10 ", "010", True],
    "year": [2025, 2024, "2024", 2101, "dos mil", None, 10**20, "²⁰²⁵", "2025", False],
    "timestamp": [
        "2025-01-15T10:30:00.000Z", "2025-01-15T10:30:00", "2025-01-15T10:30:00+05:30", "2025-01-15",
        "2025-02-30T00:00:00Z", "2025-13-01T00:00:00", "2025-01-01T24:00:00Z", "2025-01-01T00:00:00+99:00",
        "2025-01-01T00:00:00+23:59", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999Z", "10:30", "", None, 0, 1.5e12, [],
    ],
    "code": [*CODES, "", "   ", "\u200b", "A\x00", "A\nB", "x" * 65, 12345, None, ["A1"], {"code": "A1"}],
    "id": [*SCAN_IDS, "", None, "nope", 1, SCAN_IDS[0].upper(), uuid.UUID(int=2).hex, f"{{{SCAN_IDS[0]}}}"],
    "since": [0, 1, 2, 3, 10**6, -1, "1", 1.0, True, None, [], 2**63],
    "inventoryId": ["", None, "999999", 0, "1", 1, [], {}],
}  # fmt: skip

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.sampled_from(TRICKY)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass(frozen=True)
class Room:
    month: int
    year: int

    @property
    def path(self) -> str:
        return room_path(month=str(self.month), year=str(self.year))

    @property
    def fields(self) -> dict:
        return {"agency": "Alfa Romeo", "month": str(self.month), "year": self.year}


codes = st.sampled_from(CODES) | st.text(min_size=1, max_size=70)
client_kinds = st.sampled_from(
    ["scan_added"] * 4 + ["scan_removed"] * 3 + ["ping"] * 2 + ["user_joined", "resume", "resume"]
    + ["inventory_completed"]
)  # fmt: skip
shapes = st.sampled_from(["valid"] * 5 + ["mutated"] * 7 + ["json", "text", "binary", "deep", "huge", "cut"])
mutations = st.sampled_from(["drop", "retype", "tricky", "extra", "room", "wrap", "field", "field"])
tricky = st.sampled_from(TRICKY)
field_names = st.sampled_from(sorted(FIELD_VALUES))
field_values = {name: st.sampled_from(values) for name, values in FIELD_VALUES.items()}
wrong_rooms = st.one_of(
    st.fixed_dictionaries({"agency": st.sampled_from([*AGENCIES[4:], 42, None, ""])}),
    st.fixed_dictionaries({"month": st.sampled_from(["11", "13", 11, "octubre", "", None, "²", "١٠", 10.0])}),
    st.fixed_dictionaries({"year": st.sampled_from([2024, "2024", 2101, "dos mil", None, 10**20, "²⁰²⁵"])}),
)
depths = st.integers(1, 60) | st.integers(60, 3000)
lengths = st.integers(1_000, MAX_FRAME - 200) | st.integers(MAX_FRAME - 200, 2 * MAX_FRAME)


# Values for the declared fields of a client message (by "parent.field", else by field), valid for
# the declaration; whether the server accepts them is the fuzz's question.
DECLARED_VALUES = {
    "scanData.code": codes,
    "scanData.id": st.sampled_from(SCAN_IDS)
    | st.sampled_from([value for value in FIELD_VALUES["id"] if isinstance(value, str)]),
    "scanData.timestamp": st.sampled_from(["2025-01-15T10:30:00.000Z", "2025-01-15T10:30:00+05:30"]),
    "ping.timestamp": st.sampled_from(["t1", 17, "", 1.5]),
    "since": st.sampled_from([0, 1, 2, 5, 10**6]),
    "ref": st.sampled_from(["r1", "7", "x" * wire.REF_MAX_CHARS]),
    "userId": st.just("user123"),
    "inventoryId": st.sampled_from(["", "inv_123"]),
}


def declared_message(draw, kind: str, room: Room) -> dict:
    """A client message of `kind` as protocol v1 declares it (realtime.wire), for this room."""

    def value(model, path):
        hints = typing.get_type_hints(model)
        made = {}
        for key, hint in hints.items():
            if key not in model.__required_keys__ and not draw(st.booleans()):
                continue
            if key == "type":
                made[key] = kind
            elif key in room.fields:
                made[key] = room.fields[key]
            elif typing.is_typeddict(hint):
                made[key] = value(hint, kind if key == "data" else key)
            elif f"{path}.{key}" in DECLARED_VALUES:
                made[key] = draw(DECLARED_VALUES[f"{path}.{key}"])
            elif key in DECLARED_VALUES:
                made[key] = draw(DECLARED_VALUES[key])
            else:
                made[key] = "John Doe"
        return made

    message = value(wire.CLIENT_MESSAGES[kind], kind)
    wire.check_client_message(message)
    return message


def node_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from node_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from node_paths(item, (*prefix, index))


def set_at(message, path, value):
    if not path:
        return value
    node = message
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return message


def mutate(draw, message):
    """Drop a field, give it a wrong type or a tricky value, add one, or name another room."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(node_paths(message))))
        operation = draw(mutations)
        parent = message
        for step in path[:-1]:
            parent = parent[step]
        if operation == "drop" and path and isinstance(parent, dict):
            del parent[path[-1]]
        elif operation == "extra" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
        elif operation == "room" and isinstance(message, dict) and isinstance(message.get("data"), dict):
            message["data"].update(draw(wrong_rooms))
        elif operation == "field" and path and path[-1] in FIELD_VALUES:
            parent[path[-1]] = draw(field_values[path[-1]])
        elif operation == "field" and isinstance(parent, dict):
            name = draw(field_names)
            parent[name] = draw(field_values[name])
        elif operation == "wrap":
            current = parent[path[-1]] if path else message
            message = set_at(message, path, draw(st.sampled_from([[current], {"value": current}])))
        else:
            value = draw(tricky) if operation == "tricky" else draw(json_values)
            message = set_at(message, path, value)
    return message


@st.composite
def frames(draw, room: Room) -> Frame:
    shape = draw(shapes)
    message = declared_message(draw, draw(client_kinds), room)
    ensure_ascii = draw(st.booleans())
    if shape == "valid":
        return Frame.of(json.dumps(message, ensure_ascii=ensure_ascii))
    if shape == "mutated":
        return Frame.of(json.dumps(mutate(draw, message), ensure_ascii=ensure_ascii))
    if shape == "json":
        return Frame.of(json.dumps(draw(json_values), ensure_ascii=ensure_ascii))
    if shape == "text":
        return Frame.of(draw(st.text(max_size=60)))
    if shape == "binary":
        if draw(st.booleans()):
            return Frame.of(draw(st.binary(max_size=60)))
        return Frame.of(json.dumps(message, ensure_ascii=False).encode("utf-8"))
    if shape == "cut":
        text = json.dumps(message, ensure_ascii=ensure_ascii)
        # A share of the text rather than a length: draws must not depend on the room in play.
        return Frame.of(text[: len(text) * draw(st.integers(0, 99)) // 100])
    path = draw(st.sampled_from(list(node_paths(message))))
    if shape == "deep":
        depth = draw(depths)
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"k":', "}")]))
        filler = opener * depth + "1" + closer * depth
    else:  # huge: a long string, mostly under the 64 KiB limit, sometimes over
        length = draw(lengths)
        char = draw(st.sampled_from("Aé🚗 "))
        filler = json.dumps(char * (length // len(char.encode())), ensure_ascii=False)
    text = json.dumps(set_at(message, path, "\x00FILLER\x00"))
    frame = Frame.of(text.replace('"\\u0000FILLER\\u0000"', filler, 1))
    if frame.message is NOT_JSON and shape == "deep":
        # Too deep for json.loads here, which does not mean too deep for the server: say what it is.
        frame.message = set_at(message, path, DEEP)
    return frame


# The session: send frames on one connection, check every answer.


@database_sync_to_async
def room_state(room: Room):
    inventory = Inventory.objects.filter(agency__name="Alfa Romeo", month=room.month, year=room.year).first()
    if inventory is None:
        return 0, set()
    return inventory.last_seq, set(inventory.scans.values_list("code", flat=True))


@dataclass
class Session:
    seq: int = 0
    codes: set = field(default_factory=set)
    completed: bool = False


def check_shape(message: dict) -> None:
    """A message the server sends is one protocol v1 declares, with well-formed server values."""
    try:
        wire.check_server_message(message)
    except wire.WireError as error:
        raise AssertionError(f"{error}: {message}") from None
    kind, data = message["type"], message["data"]
    if "timestamp" in data and kind != protocol.PONG:
        assert SERVER_TIME.match(data["timestamp"]), message
    if kind == protocol.PONG:
        assert SERVER_TIME.match(data["serverTime"]), message
    if "month" in data:
        assert data["month"].isdigit() and 1 <= int(data["month"]) <= 12, message
    if kind == protocol.ERROR:
        assert data["message"], message
        return
    for scan_data in [data["scanData"]] if "scanData" in data else data.get("scans", []):
        assert SERVER_TIME.match(scan_data["timestamp"]) and uuid.UUID(scan_data["id"]), message
        code = scan_data["code"]
        assert code == code.strip() and 1 <= len(code) <= 64 and code.isprintable(), message
    if "seq" in data:
        assert data["seq"] >= 0, message


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


class Reader:
    """Reads what the server sends, checking every frame is UTF-8 text holding standard JSON."""

    def __init__(self, ws, frame: Frame | None = None):
        self.ws = ws
        self.frame = frame

    async def output(self) -> dict:
        """The next ASGI output; an exception the application raised meanwhile is raised at once."""
        if self.ws.future.done():
            self.ws.future.result()
        received = asyncio.ensure_future(self.ws.output_queue.get())
        await asyncio.wait({received, self.ws.future}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if received.done():
            return received.result()
        received.cancel()
        if self.ws.future.done():
            self.ws.future.result()
        raise AssertionError(f"no answer within {TIMEOUT} s (after {self.frame})")

    async def next(self) -> dict | int:
        """The next message that is not presence chatter, or the close code."""
        while True:
            output = await self.output()
            if output["type"] == "websocket.close":
                return output.get("code", 1000)
            text = output.get("text")
            assert text is not None, f"a binary frame from the server: {output}"
            try:
                size = len(text.encode("utf-8"))
                message = strict_json(text)
            except (UnicodeEncodeError, ValueError):
                raise AssertionError(f"not UTF-8 JSON text: {text!r} (after {self.frame})") from None
            # Nothing the server answers a client's frame with is bigger than a client's frame.
            assert size <= MAX_FRAME, f"a message of {size} bytes (after {self.frame})"
            check_shape(message)
            if message.get("type") in CHATTER:
                continue
            return message


async def exchange(ws, frame: Frame, session: Session, marker: int) -> bool:
    """Send one frame and check its answer; False once the server closed the socket."""
    STATS["inputs"] += 1
    # send_input, not send_to: an empty frame is a frame too.
    payload = {"text": frame.text} if frame.text is not None else {"bytes": frame.data}
    await ws.send_input({"type": "websocket.receive", **payload})
    reader = Reader(ws, frame)
    if frame.size > MAX_FRAME:
        error = await reader.next()
        assert error["type"] == "error" and error["data"]["code"] == "message_too_big", error
        assert await reader.next() == protocol.CLOSE_MESSAGE_TOO_BIG
        STATS["errors"] += 1
        return False

    kind = frame.kind
    if kind == protocol.RESUME:
        # A resume may be answered by nothing at all: a ping marks the end of its answer.
        await ws.send_to(text_data=json.dumps({"type": "ping", "data": {"timestamp": f"m{marker}"}}))
        answers = []
        while True:
            message = await reader.next()
            assert not isinstance(message, int), f"closed with {message} after {frame}"
            if message["type"] == protocol.PONG and message["data"].get("timestamp") == f"m{marker}":
                break
            answers.append(message)
    else:
        first = await reader.next()
        assert not isinstance(first, int), f"closed with {first} after {frame}"
        answers = [first]

    sent_ref = frame.message.get("ref") if isinstance(frame.message, dict) else None
    for message in answers:
        check_shape(message)
        # A direct reply may carry the client's `ref`, as sent; never another one.
        assert message.get("ref") in (None, sent_ref), f"{message} answered {frame}"
        data = message["data"]
        if message["type"] == protocol.ERROR:
            STATS["errors"] += 1
            assert len(answers) == 1, answers
            assert data["code"] not in FAULTS, f"{data} after {frame}"
            if frame.depth > 200:  # the server's json.loads may give up before ours, or after
                continue
            if frame.message is NOT_JSON:
                assert data["code"] == "invalid_json", f"{data} after {frame}"
            elif not isinstance(frame.message, dict) or not frame.ref_valid:
                assert data["code"] == "invalid_message", f"{data} after {frame}"
            elif kind is None:
                assert data["code"] in {"unknown_type", "invalid_data"}, f"{data} after {frame}"
            elif kind == protocol.PING and ping_refused(frame):
                assert data["code"] in {"invalid", "wrong_room"}, f"{data} after {frame}"
            continue
        assert message["type"] in ANSWERS[kind], f"{message} answered {frame}"
        if kind == protocol.RESUME:
            if message["type"] == protocol.SNAPSHOT:
                assert {scan["code"] for scan in data["scans"]} == session.codes, message
                session.seq = data["seq"]
                continue
            if message is answers[0]:  # the replay restarts right after `since`
                session.seq = frame.message["data"]["since"]
            assert data["seq"] == session.seq + 1, f"replayed seq {data['seq']} after {session.seq}"
            session.seq = data["seq"]
            continue
        if "seq" in data:
            assert data["seq"] == session.seq + 1, f"seq {data['seq']} after {session.seq}: {message}"
            session.seq = data["seq"]
        if message["type"] == protocol.SCAN_ADDED and not data.get("replayed"):
            assert data["scanData"]["code"] not in session.codes, message
            session.codes.add(data["scanData"]["code"])
            STATS["scans stored"] += 1
        elif message["type"] == protocol.SCAN_ADDED:
            assert data["scanData"]["code"] in session.codes, message
        elif message["type"] == protocol.SCAN_REMOVED and data.get("replayed"):
            assert "seq" not in data, message  # a retried removal by id: nothing changed
        elif message["type"] == protocol.SCAN_REMOVED:
            assert data["scanData"]["code"] in session.codes, message
            session.codes.remove(data["scanData"]["code"])
        elif message["type"] == protocol.PONG:
            assert not ping_refused(frame), f"{message} answered {frame}"
            sent = (frame.message.get("data") or {}).get("timestamp")
            if sent in (None, ""):
                assert SERVER_TIME.match(data["timestamp"]), message
            else:
                assert data["timestamp"] == sent and type(data["timestamp"]) is type(sent), message
        elif message["type"] == protocol.INVENTORY_COMPLETED:
            terminated = await reader.next()
            assert terminated["type"] == protocol.SESSION_TERMINATED, terminated
            check_shape(terminated)
            assert await reader.next() == 1000
            session.completed = True
            return False
    return True


async def run_session(user, room: Room, frames: list[Frame]) -> Session:
    seq, codes = await room_state(room)
    session = Session(seq=seq, codes=codes)
    client, connected = await connect_raw(room.path, token=await token_of(user))
    ws = client.ws
    try:
        assert connected
        greeting = await Reader(ws).next()
        assert greeting["type"] == protocol.PRESENCE, greeting
        for number, frame in enumerate(frames):
            if not await exchange(ws, frame, session, number):
                return session
        # Nothing is left unread: the next answer is the pong of a last ping.
        await ws.send_to(text_data='{"type": "ping", "data": {"timestamp": "last"}}')
        last = await Reader(ws).next()
        assert last["type"] == "pong" and last["data"]["timestamp"] == "last", last
    finally:
        await ws.disconnect()
    return session


def assert_only_valid_scans(room: Room, session: Session) -> None:
    for code in Scan.objects.values_list("code", flat=True):
        assert code == code.strip() and 1 <= len(code) <= 64 and code.isprintable(), repr(code)
    repeated = Scan.objects.values("inventory", "code").annotate(n=Count("id")).filter(n__gt=1)
    assert not repeated.exists(), list(repeated)
    stored = Scan.objects.filter(inventory__month=room.month, inventory__year=room.year)
    assert set(stored.values_list("code", flat=True)) == session.codes


@pytest.fixture(autouse=True)
def no_rate_limit(settings):
    """The fuzz sends thousands of messages a minute, and connects as one user: let every one in."""
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 0, "CONNECT_RATE_PER_USER": 0}


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    print(
        f"\nFUZZ socket: {STATS['inputs']} inputs, {STATS['errors']} errors answered, "
        f"{STATS['scans stored']} scans stored, {STATS['crashes']} crashes "
        f"({STATS['connects']} fuzzed connects)"
    )


def test_fuzzed_sessions_are_answered_and_store_only_valid_scans(ana, settings):
    settings.INVENTORY_OPEN_MONTHS_AHEAD = 12 * 900  # a fresh room after each completion, for years
    rooms = iter(Room(month=1 + n % 12, year=2025 + n // 12) for n in range(10_000))
    current = {"room": next(rooms)}

    @hypothesis_settings(FUZZ, max_examples=130)
    @given(data=st.data())
    def session(data):
        room = current["room"]
        sent = data.draw(st.lists(frames(room), min_size=1, max_size=8), label="frames")
        try:
            result = async_to_sync(run_session)(ana, room, sent)
        except AssertionError:
            raise
        except Exception:  # the application raised: the communicator re-raises it here
            STATS["crashes"] += 1
            raise
        assert_only_valid_scans(room, result)
        if result.completed:
            current["room"] = next(rooms)

    session()


def test_oversized_frames_are_closed_with_1009_and_the_server_keeps_serving(ana):
    @hypothesis_settings(FUZZ, max_examples=20)
    @given(
        size=st.integers(MAX_FRAME + 1, 4 * MAX_FRAME),
        char=st.sampled_from("Aé🚗"),
        binary=st.booleans(),
    )
    def oversized(size, char, binary):
        text = '{"type": "ping", "data": {"timestamp": "' + char * (size // len(char.encode())) + '"}}'
        frame = Frame.of(text.encode() if binary else text)
        assert frame.size > MAX_FRAME
        async_to_sync(run_session)(ana, Room(month=10, year=2025), [frame])

    oversized()
    # Still serving: a normal session after all of them.
    async_to_sync(run_session)(ana, Room(month=10, year=2025), [Frame.of('{"type": "ping"}')])


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("size", [MAX_FRAME, MAX_FRAME + 1], ids=["64KiB", "64KiB+1"])
def test_a_frame_of_exactly_64_kib_is_answered_and_one_byte_more_is_closed(ana, size, binary):
    template = '{"type": "ping", "data": {"timestamp": "%s"}}'
    text = template % ("é" * ((size - len(template) + 2) // 2))
    text = text.replace('"}}', "A" * (size - len(text.encode())) + '"}}')
    frame = Frame.of(text.encode() if binary else text)
    assert frame.size == size
    async_to_sync(run_session)(ana, Room(month=10, year=2025), [frame])


# Fuzzed room URLs: every connection joins, or is refused with an error and its close code.

URL_AGENCIES = [*AGENCIES, "alfa-romeo ", "%", "..", "\x00", "Alfa\x00Romeo", "🚗", " ", "a" * 300]
URL_MONTHS = ["10", "03", "3", "0", "13", "010", " 10", "1e1", "octubre", "²", "١٠", "-1", "%20"]
URL_YEARS = ["2025", "2000", "2100", "1999", "2101", "99999", "0x7E9", "²⁰²⁵", "٢٠٢٥", "2025.0"]
URL_SINCE = ["0", "1", "5", "99999999999999999999", "-1", "x", "", "²", "٣", "1e3"]


def one_mostly(usual: list[str], odd: list[str]):
    """Usually a valid value (so that most connections get in), else an odd one or any text."""
    any_text = st.text(min_size=1, max_size=30).filter(lambda text: "/" not in text)
    # sampled_from picks evenly; one_of would lean to the text branch.
    picks = {"usual": st.sampled_from(usual), "odd": st.sampled_from(odd), "text": any_text}
    return st.sampled_from(["usual"] * 6 + ["odd", "text"]).flatmap(picks.__getitem__)


def url_segment(value: str) -> str:
    return quote(value, safe="")


async def connect_once(path: str, headers) -> str:
    """Connect, and say how it ended: joined (and still answering), or refused with its close code."""
    client, connected = await connect_raw(path, headers=headers)
    ws = client.ws
    try:
        assert connected
        first = await Reader(ws).next()
        assert isinstance(first, dict), first
        check_shape(first)
        if first["type"] == protocol.ERROR:
            code = first["data"]["code"]
            assert code in REFUSALS, first
            assert await Reader(ws).next() == REFUSALS[code], first
            return code
        assert first["type"] == protocol.PRESENCE, first
        await ws.send_to(text_data='{"type": "ping", "data": {"timestamp": "alive"}}')
        while (answer := await Reader(ws).next())["type"] != protocol.PONG:
            check_shape(answer)
            assert answer["type"] in {"scan_added", "scan_removed", "snapshot"}, answer
        return "joined"
    finally:
        with contextlib.suppress(Exception):
            await ws.disconnect()


def test_fuzzed_room_urls_join_or_are_refused_with_the_documented_close_code(ana, peugeot):
    outcomes = Counter()

    @hypothesis_settings(FUZZ, max_examples=100)
    @given(
        agency=one_mostly(["Alfa Romeo", "alfa-romeo", "ALFA ROMEO", "Peugeot Querétaro"], URL_AGENCIES),
        month=one_mostly(["10", "03", "3", "12"], URL_MONTHS),
        year=one_mostly(["2025", "2030", "2100"], URL_YEARS),
        since=st.none() | st.none() | st.sampled_from(URL_SINCE) | st.text(max_size=4),
        auth=st.sampled_from(["header"] * 6 + ["query"] * 3 + ["none", "bad", "bad-query", "nul-query"]),
    )
    def connects(agency, month, year, since, auth):
        STATS["inputs"] += 1
        STATS["connects"] += 1
        token = token_for_sync(ana)
        query = {"header": [], "query": [("token", token)], "none": [], "bad": []}.get(auth, [])
        query += {"bad-query": [("token", "nope")], "nul-query": [("token", "\x00")]}.get(auth, [])
        if since is not None:
            query.append(("since", since))
        path = "/ws/inventory/" + "/".join(url_segment(part) for part in (agency, month, year))
        if query:
            path += "?" + "&".join(f"{name}={url_segment(value)}" for name, value in query)
        headers = [(b"authorization", f"Token {token if auth == 'header' else 'nope'}".encode())]
        headers = headers if auth in {"header", "bad"} else []
        try:
            outcome = async_to_sync(connect_once)(path, headers)
        except Exception as exc:  # an assertion, or the application raised
            STATS["crashes"] += not isinstance(exc, AssertionError)
            raise
        outcomes[outcome] += 1

    connects()
    print(f"\nFUZZ connects: {dict(outcomes)}")


# The bugs the fuzz found, each with its smallest input, kept as regression tests.


async def first_answer_text(client) -> str:
    """The text of the first message that is not chatter."""
    while True:
        output = await Reader(client.ws).output()
        assert output["type"] == "websocket.send", output
        if json.loads(output["text"])["type"] not in CHATTER:
            return output["text"]


async def first_answer(client) -> dict:
    """The first message that is not chatter, checked to be UTF-8 text holding standard JSON."""
    text = await first_answer_text(client)
    text.encode("utf-8")
    return strict_json(text)


# "²".isdigit() is True, int("²") raises: only ASCII digits make a month, a year or a `since`.
@pytest.mark.parametrize("room", [{"month": "²"}, {"year": "²⁰²⁵"}, {"month": "1²"}, {"month": "١٠"}])
async def test_a_room_field_of_non_decimal_digits_is_wrong_room(ana, room):
    async with joined(ana) as client:
        await client.send("ping", room)
        answer = await first_answer(client)
        assert answer["type"] == "error" and answer["data"]["code"] == "wrong_room", answer


async def test_a_room_url_of_non_decimal_digits_is_refused_with_4404(ana):
    client, connected = await connect_raw(room_path(month="²"), token=await token_of(ana))
    try:
        assert connected
        answer = await first_answer(client)
        assert answer["data"]["code"] == "invalid", answer
        assert await client.closed_with() == protocol.CLOSE_NOT_FOUND
    finally:
        with contextlib.suppress(Exception):
            await client.ws.disconnect()


async def test_a_since_of_non_decimal_digits_in_the_url_is_ignored(ana):
    client, connected = await connect_raw(room_path(query="since=%C2%B2"), token=await token_of(ana))
    try:
        assert connected
        assert (await first_answer(client))["type"] == "presence"
        await client.send("ping", {"timestamp": "alive"})
        assert (await first_answer(client))["type"] == "pong"
    finally:
        with contextlib.suppress(Exception):
            await client.ws.disconnect()


# PostgreSQL refuses NUL in text: looked up, it was a DataError answered as "database down" (4503).
@pytest.mark.parametrize(
    "query,agency,code",
    [("", "Alfa\x00Romeo", "agency_not_found"), ("token=%00", "Alfa Romeo", "unauthenticated")],
    ids=["agency", "token"],
)
async def test_a_nul_in_the_room_url_is_refused_as_bad_input(ana, query, agency, code):
    token = None if query else await token_of(ana)
    client, connected = await connect_raw(room_path(agency=agency, query=query), token=token)
    try:
        assert connected
        answer = await first_answer(client)
        assert answer["data"]["code"] == code, answer
        assert await client.closed_with() == REFUSALS[code]
    finally:
        with contextlib.suppress(Exception):
            await client.ws.disconnect()


# Echoes are short text or finite numbers (protocol.echoable): no answer is made invalid by them.
async def test_the_error_answering_a_lone_surrogate_code_is_utf8_text(ana):
    async with joined(ana) as client:
        await client.ws.send_to(text_data='{"type": "scan_added", "data": {"scanData": {"code": "\\ud800"}}}')
        answer = await first_answer(client)
        assert answer["type"] == "error" and answer["data"]["code"] == "invalid", answer
        assert "scanData" not in answer["data"], answer


@pytest.mark.parametrize(
    "template",
    [
        '{"type": "ping", "data": {"timestamp": "%s"}}',
        '{"type": "scan_added", "data": {"scanData": {"code": "%s"}}}',
    ],
    ids=["pong", "error"],
)
async def test_no_answer_to_a_frame_of_64_kib_is_over_64_kib(ana, template):
    frame = template % ("x" * (MAX_FRAME - len(template) + 2))
    assert len(frame.encode()) == MAX_FRAME
    async with joined(ana) as client:
        await client.ws.send_to(text_data=frame)
        assert len((await first_answer_text(client)).encode()) <= MAX_FRAME


@pytest.mark.parametrize(
    "timestamp",
    ["1e999", "-1e999", '"\\ud800"', '"' + "x" * 65 + '"', "true", "[1]", '{"t": 1}', "[" * 300 + "]" * 300],
    ids=["infinity", "-infinity", "lone-surrogate", "65-chars", "bool", "list", "object", "nested-300"],
)
async def test_a_ping_whose_timestamp_cannot_be_echoed_gets_a_clear_error(ana, timestamp):
    async with joined(ana) as client:
        await client.ws.send_to(text_data=f'{{"type": "ping", "data": {{"timestamp": {timestamp}}}}}')
        answer = await first_answer(client)
        assert answer["type"] == "error" and answer["data"]["code"] == "invalid", answer
        assert "timestamp" in answer["data"]["message"]
        await client.send("ping", {"timestamp": "still-open"})
        assert (await first_answer(client))["data"]["timestamp"] == "still-open"


@pytest.mark.parametrize(
    "timestamp", ["2025-01-15T10:30:00.000Z", 1736937000000, 0, 1.5, "é🚗" * 32], ids=repr
)
async def test_a_ping_timestamp_of_short_text_or_a_number_comes_back_as_sent(ana, timestamp):
    async with joined(ana) as client:
        await client.send("ping", {"timestamp": timestamp})
        pong = await first_answer(client)
        assert pong["type"] == "pong" and pong["data"]["timestamp"] == timestamp, pong
        assert type(pong["data"]["timestamp"]) is type(timestamp)


async def test_a_deeply_nested_ping_timestamp_is_never_an_internal_error(ana):
    codes = Counter()
    async with joined(ana) as client:
        for depth in range(850, 1001, 10):
            nested = "[" * depth + "]" * depth
            await client.ws.send_to(text_data=f'{{"type": "ping", "data": {{"timestamp": {nested}}}}}')
            answer = await first_answer(client)
            codes[answer["data"].get("code", answer["type"])] += 1
    assert set(codes) <= {"invalid", "invalid_json"}, codes
