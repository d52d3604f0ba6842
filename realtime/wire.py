"""Protocol v1, declared once: every message in both directions, its close codes and error codes.

The declaration is plain typing (no Django), so that the protocol builders (realtime.protocol)
return these types, tests check every frame the server sends against them
(`check_server_message`), the fuzz test takes them as its oracle, and tools, JS and
docs/protocol.md are checked against them. Every message is `{"type": ..., "data": {...}}`; a
client may add a top-level `ref` (1 to 64 characters), and the server's direct reply to that
message carries the same `ref`.
"""

import types
import typing
from typing import Any, Literal, NotRequired, TypedDict

# Message types, client -> server.
USER_JOINED = "user_joined"
SCAN_ADDED = "scan_added"
SCAN_REMOVED = "scan_removed"
INVENTORY_COMPLETED = "inventory_completed"
PING = "ping"
RESUME = "resume"
CLIENT_TYPES = (USER_JOINED, SCAN_ADDED, SCAN_REMOVED, INVENTORY_COMPLETED, PING, RESUME)

# Server -> client, besides user_joined, scan_added, scan_removed and inventory_completed.
SESSION_TERMINATED = "session_terminated"
PONG = "pong"
ERROR = "error"
USER_LEFT = "user_left"
PRESENCE = "presence"
SNAPSHOT = "snapshot"
PROGRESS = "progress"
SERVER_TYPES = (
    USER_JOINED,
    USER_LEFT,
    PRESENCE,
    SCAN_ADDED,
    SCAN_REMOVED,
    INVENTORY_COMPLETED,
    SESSION_TERMINATED,
    PONG,
    ERROR,
    SNAPSHOT,
    PROGRESS,
)

# Who is in the room: news about people, not about the count. Clients that only follow the
# count (load tests, test clients) skip these.
PRESENCE_CHATTER = frozenset({USER_JOINED, USER_LEFT, PRESENCE})

# Close codes: 1000, 1009 and 1012 are the standard "normal", "message too big" and "service
# restart"; 44xx mirror HTTP statuses.
CLOSE_NORMAL = 1000
CLOSE_MESSAGE_TOO_BIG = 1009
# The instance is shutting down (deploy, scale-in): reconnect now, without backoff, and resume with
# ?since; another instance (or this one, restarted) takes the socket.
CLOSE_SERVICE_RESTART = 1012
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_COMPLETED = 4409
# 4429, too many: the room is full, the user's own limits (connections, connects a minute), or a
# client that kept sending past the rate limit.
CLOSE_TOO_MANY = 4429
CLOSE_ROOM_FULL = CLOSE_TOO_MANY
CLOSE_UNAVAILABLE = 4503
CLOSE_CODES = (
    CLOSE_NORMAL,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_SERVICE_RESTART,
    CLOSE_UNAUTHENTICATED,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_COMPLETED,
    CLOSE_TOO_MANY,
    CLOSE_UNAVAILABLE,
)

# Every `data.code` an `error` may carry.
ErrorCode = Literal[
    # the frame
    "invalid_json",
    "invalid_message",
    "unknown_type",
    "invalid_data",
    "invalid",
    "wrong_room",
    "message_too_big",
    "rate_limited",
    # the write
    "duplicate_scan",
    "scan_not_found",
    "scan_removed",
    "scan_id_conflict",
    "inventory_completed",
    "inventory_not_found",
    # joining (each followed by its close)
    "unauthenticated",
    "agency_not_found",
    "month_not_openable",
    "not_found",
    "room_full",
    "user_connection_limit",
    "connect_rate_limited",
    "access_revoked",
    # the server
    "unavailable",
    "database_unavailable",
    "internal_error",
]
ERROR_CODES: tuple[str, ...] = typing.get_args(ErrorCode)
# The error codes that settle a client's request as refused: sending it again cannot succeed
# (the live page's REPLY_ERROR_CODES). Any other error (unavailable, rate_limited, ...) is retried.
REFUSING_ERROR_CODES = frozenset(
    {
        "duplicate_scan",
        "scan_id_conflict",
        "scan_not_found",
        "scan_removed",
        "invalid",
        "invalid_data",
        "wrong_room",
        "internal_error",
    }
)

# A client's `ref`: text of 1 to 64 characters, echoed in the direct reply.
REF_MAX_CHARS = 64

Match = Literal["expected", "unexpected", "flagged"]


# Shared parts.


class RoomFields(TypedDict):
    agency: str
    month: str  # "10": protocol v1's month is a string
    year: int


class ScanData(TypedDict):
    code: str
    user: str  # who scanned it (display name)
    timestamp: str
    id: str  # the scan's UUID, the client's idempotency key
    userId: str | None  # None: the scanner's account was deleted


class SnapshotScan(ScanData):
    match: Match | None


class Figures(TypedDict):
    expected: int
    found: int
    missing: int
    unexpected: int
    flagged: int
    counted: int


class PresenceUser(TypedDict):
    userId: str
    userName: str
    connections: int
    since: str


class ScanEcho(TypedDict):
    """The `scanData` an error answering a scan names: its `code` and `id`, as sent."""

    code: NotRequired[str]
    id: NotRequired[str]


# Server -> client: data.


class UserJoinedData(RoomFields):
    userId: str
    userName: str
    timestamp: str


class UserLeftData(UserJoinedData):
    pass


class PresenceData(RoomFields):
    users: list[PresenceUser]
    timestamp: str


class ScanChangeData(RoomFields):
    userId: str | None
    userName: str
    scanData: ScanData
    timestamp: str
    seq: NotRequired[int]  # absent from a replayed answer
    progress: NotRequired[Figures]
    replayed: NotRequired[bool]  # the answer to a retry, to its sender alone


class ScanAddedData(ScanChangeData):
    match: Match | None


class ScanRemovedData(ScanChangeData):
    pass


class InventoryCompletedData(RoomFields):
    completedBy: str
    inventoryId: str
    message: str
    timestamp: str
    seq: NotRequired[int]
    summary: NotRequired[Figures]


class SessionTerminatedData(RoomFields):
    completedBy: str
    message: str
    timestamp: str


class PongData(TypedDict):
    timestamp: str | int | float  # the client's, echoed; else the server time
    serverTime: str


class ErrorData(TypedDict):
    message: str
    code: ErrorCode
    timestamp: str
    field: NotRequired[str]  # the field at fault
    scanData: NotRequired[ScanEcho]
    messageType: NotRequired[str]  # rate_limited: the budget (a client type, or "invalid")
    retryAfter: NotRequired[int]  # connect_rate_limited, unavailable (too many joining): seconds
    scannedBy: NotRequired[str]  # duplicate_scan
    scannedAt: NotRequired[str]
    removedBy: NotRequired[str]  # scan_removed
    removedAt: NotRequired[str]
    completedBy: NotRequired[str]  # inventory_completed


class SnapshotData(RoomFields):
    status: str
    seq: int
    scans: list[SnapshotScan]
    timestamp: str


class ProgressData(RoomFields):
    progress: Figures
    cause: Literal["expected_imported", "expected_cleared"]
    timestamp: str


# Server -> client: messages. `ref` only on direct replies to a client message.


class UserJoinedMessage(TypedDict):
    type: Literal["user_joined"]
    data: UserJoinedData


class UserLeftMessage(TypedDict):
    type: Literal["user_left"]
    data: UserLeftData


class PresenceMessage(TypedDict):
    type: Literal["presence"]
    data: PresenceData
    ref: NotRequired[str]  # the answer to a client's user_joined


class ScanAddedMessage(TypedDict):
    type: Literal["scan_added"]
    data: ScanAddedData
    ref: NotRequired[str]


class ScanRemovedMessage(TypedDict):
    type: Literal["scan_removed"]
    data: ScanRemovedData
    ref: NotRequired[str]


class InventoryCompletedMessage(TypedDict):
    type: Literal["inventory_completed"]
    data: InventoryCompletedData
    ref: NotRequired[str]


class SessionTerminatedMessage(TypedDict):
    type: Literal["session_terminated"]
    data: SessionTerminatedData


class PongMessage(TypedDict):
    type: Literal["pong"]
    data: PongData
    ref: NotRequired[str]


class ErrorMessage(TypedDict):
    type: Literal["error"]
    data: ErrorData
    ref: NotRequired[str]


class SnapshotMessage(TypedDict):
    type: Literal["snapshot"]
    data: SnapshotData
    ref: NotRequired[str]


class ProgressMessage(TypedDict):
    type: Literal["progress"]
    data: ProgressData


ServerMessage = (
    UserJoinedMessage
    | UserLeftMessage
    | PresenceMessage
    | ScanAddedMessage
    | ScanRemovedMessage
    | InventoryCompletedMessage
    | SessionTerminatedMessage
    | PongMessage
    | ErrorMessage
    | SnapshotMessage
    | ProgressMessage
)


# Client -> server. `agency`, `month` and `year` may be left out; `userId`, `userName`,
# `completedBy`, `inventoryId` are protocol v1's and ignored (identity comes from authentication).


class ClientRoomFields(TypedDict):
    agency: NotRequired[str]
    month: NotRequired[str]
    year: NotRequired[int]


class ClientUserJoinedData(ClientRoomFields):
    userId: NotRequired[str]
    userName: NotRequired[str]


class ClientScanData(TypedDict):
    code: str
    id: NotRequired[str]  # a UUID: the idempotency key
    timestamp: NotRequired[str]  # ISO 8601, when it was scanned
    user: NotRequired[str]


class ClientScanChangeData(ClientUserJoinedData):
    scanData: ClientScanData


class ClientInventoryCompletedData(ClientRoomFields):
    completedBy: NotRequired[str]
    inventoryId: NotRequired[str]
    message: NotRequired[str]


class ClientPingData(TypedDict):
    timestamp: NotRequired[str | int | float]  # echoed: text of up to 64 characters or a finite number


class ClientResumeData(TypedDict):
    since: int


class ClientUserJoined(TypedDict):
    type: Literal["user_joined"]
    data: ClientUserJoinedData
    ref: NotRequired[str]


class ClientScanAdded(TypedDict):
    type: Literal["scan_added"]
    data: ClientScanChangeData
    ref: NotRequired[str]


class ClientScanRemoved(TypedDict):
    type: Literal["scan_removed"]
    data: ClientScanChangeData
    ref: NotRequired[str]


class ClientInventoryCompleted(TypedDict):
    type: Literal["inventory_completed"]
    data: ClientInventoryCompletedData
    ref: NotRequired[str]


class ClientPing(TypedDict):
    type: Literal["ping"]
    data: NotRequired[ClientPingData]
    ref: NotRequired[str]


class ClientResume(TypedDict):
    type: Literal["resume"]
    data: ClientResumeData
    ref: NotRequired[str]


ClientMessage = (
    ClientUserJoined
    | ClientScanAdded
    | ClientScanRemoved
    | ClientInventoryCompleted
    | ClientPing
    | ClientResume
)


def _by_type(union) -> dict[str, type]:
    models = typing.get_args(union)
    return {typing.get_args(typing.get_type_hints(model)["type"])[0]: model for model in models}


SERVER_MESSAGES: dict[str, type] = _by_type(ServerMessage)
CLIENT_MESSAGES: dict[str, type] = _by_type(ClientMessage)


# The checker.


class WireError(ValueError):
    """A message that is not what protocol v1 declares; the text says where and why."""


def check_server_message(message: Any) -> ServerMessage:
    """`message` (decoded JSON) as the server may send it; else WireError."""
    return _check_message(message, SERVER_MESSAGES, "server")


def check_client_message(message: Any) -> ClientMessage:
    """`message` (decoded JSON) as a client may send it; else WireError."""
    return _check_message(message, CLIENT_MESSAGES, "client")


def _check_message(message, models: dict[str, type], side: str):
    if not isinstance(message, dict):
        raise WireError(f"a message is an object, not {_name(message)}")
    kind = message.get("type")
    if kind not in models:
        raise WireError(f"unknown {side} message type {kind!r}; known: {', '.join(models)}")
    _check(message, models[kind], kind)
    ref = message.get("ref")
    if ref is not None and not 1 <= len(ref) <= REF_MAX_CHARS:
        raise WireError(f"{kind}.ref: {len(ref)} characters, expected 1 to {REF_MAX_CHARS}")
    return message


def _check(value, expected, path: str) -> None:
    origin = typing.get_origin(expected)
    if expected is Any:
        return
    if typing.is_typeddict(expected):
        _check_object(value, expected, path)
    elif origin is Literal:
        if not any(value == option and type(value) is type(option) for option in typing.get_args(expected)):
            options = ", ".join(repr(option) for option in typing.get_args(expected))
            raise WireError(f"{path}: {value!r} is not one of {options}")
    elif origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(expected):
            try:
                return _check(value, option, path)
            except WireError as error:
                errors.append(str(error))
        raise WireError(" | ".join(dict.fromkeys(errors)))
    elif origin is list:
        if not isinstance(value, list):
            raise WireError(f"{path}: expected a list, got {_name(value)}")
        (item,) = typing.get_args(expected)
        for index, element in enumerate(value):
            _check(element, item, f"{path}[{index}]")
    elif origin is dict:
        if not isinstance(value, dict):
            raise WireError(f"{path}: expected an object, got {_name(value)}")
        _keys, item = typing.get_args(expected)
        for key, element in value.items():
            _check(element, item, f"{path}.{key}")
    elif expected is None or expected is type(None):
        if value is not None:
            raise WireError(f"{path}: expected null, got {_name(value)}")
    elif expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WireError(f"{path}: expected a number, got {_name(value)}")
    elif isinstance(value, bool) and expected is int or not isinstance(value, expected):
        raise WireError(f"{path}: expected {_JSON_NAMES.get(expected, expected)}, got {_name(value)}")


def _check_object(value, model, path: str) -> None:
    if not isinstance(value, dict):
        raise WireError(f"{path}: expected an object, got {_name(value)}")
    hints = typing.get_type_hints(model)
    missing = sorted(model.__required_keys__ - set(value))
    if missing:
        raise WireError(f"{path}: missing {', '.join(missing)}")
    extra = sorted(set(value) - set(hints), key=str)
    if extra:
        raise WireError(f"{path}: unexpected {', '.join(map(str, extra))} (allowed: {', '.join(hints)})")
    for key, item in value.items():
        _check(item, hints[key], f"{path}.{key}")


_JSON_NAMES = {str: "text", int: "an integer", bool: "a boolean", dict: "an object", list: "a list"}


def _name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    return f"{_JSON_NAMES.get(type(value), type(value).__name__)} ({value!r:.40})"
