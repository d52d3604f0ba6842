"""Protocol v1's declaration (realtime.wire): the checker, the builders, and everything that copies it.

The builders' output passes the checker, wrong frames are refused with a message naming the
place, and the live page's JS constants and docs/protocol.md's tables say what wire says.
"""

from __future__ import annotations

import ast
import json
import re
import typing
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from inventory.models import Agency, Inventory, Scan
from realtime import protocol, wire
from realtime.wire import WireError, check_client_message, check_server_message

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"expected": 4, "found": 2, "missing": 2, "unexpected": 1, "flagged": 1, "counted": 4}

_user = get_user_model()(pk=1, username="ana", first_name="Ana", last_name="García")
_inventory = Inventory(
    pk=1,
    agency=Agency(pk=1, name="Alfa Romeo"),
    month=10,
    year=2025,
    completed_by_name="Ana García",
    completed_at=datetime.now(UTC),
)
_scan = Scan(
    pk=1,
    uid=uuid.uuid4(),
    inventory=_inventory,
    code="A1",
    scanned_by=_user,
    scanned_by_name="Ana García",
    scanned_at=datetime.now(UTC),
    match="expected",
)
_orphan = Scan(pk=2, uid=uuid.uuid4(), inventory=_inventory, code="B2", scanned_by_name="Gone", match="")
_presence_users = [{"userId": "1", "userName": "A", "connections": 2, "since": "2025-10-01T09:00:00.000Z"}]

BUILT = {
    "user_joined": protocol.user_joined(_inventory, _user),
    "user_left": protocol.user_left(_inventory, user_id="1", user_name="A"),
    "presence": protocol.presence(_inventory, _presence_users),
    "presence_empty": protocol.presence(_inventory, []),
    "scan_added": protocol.scan_added(_scan),
    "scan_added_full": protocol.scan_added(_scan, seq=3, progress=FIGURES),
    "scan_added_orphan": protocol.scan_added(_orphan, seq=4),
    "scan_removed": protocol.scan_removed(_scan, user=_user, seq=5, progress=FIGURES),
    "inventory_completed": protocol.inventory_completed(_inventory, seq=6, summary=FIGURES),
    "inventory_completed_plain": protocol.inventory_completed(_inventory),
    "session_terminated": protocol.session_terminated(_inventory),
    "pong": protocol.pong(),
    "pong_text": protocol.pong("t1"),
    "pong_number": protocol.pong(1.5),
    "error": protocol.error("m", code="invalid", field="code"),
    "error_scan": protocol.error("m", code="rate_limited", messageType="scan_added", scanData={"code": "A1"}),
    "error_duplicate": protocol.error("m", code="duplicate_scan", scannedBy="Ana", scannedAt="t"),
    "snapshot": protocol.snapshot(_inventory, [_scan, _orphan], seq=7),
    "progress": protocol.progress_update(_inventory, FIGURES, cause="expected_imported"),
}


@pytest.mark.parametrize("name", BUILT)
def test_every_builder_makes_a_declared_message(name):
    # As a client reads it: through JSON.
    check_server_message(json.loads(json.dumps(BUILT[name])))


def test_every_server_type_has_a_builder_and_a_model():
    assert {message["type"] for message in BUILT.values()} == set(wire.SERVER_TYPES)
    assert set(wire.SERVER_MESSAGES) == set(wire.SERVER_TYPES)
    assert set(wire.CLIENT_MESSAGES) == set(wire.CLIENT_TYPES) == set(protocol.CLIENT_TYPES)


def test_the_builders_return_the_declared_models():
    for name in ("scan_added", "scan_removed", "user_joined", "pong", "error", "snapshot", "presence"):
        returned = typing.get_type_hints(getattr(protocol, name))["return"]
        assert returned is wire.SERVER_MESSAGES[name], name


def test_a_direct_reply_may_carry_the_clients_ref():
    check_server_message({**BUILT["pong"], "ref": "r" * wire.REF_MAX_CHARS})
    check_client_message({"type": "ping", "ref": "1"})
    with pytest.raises(WireError, match=r"ping\.ref: 65 characters, expected 1 to 64"):
        check_client_message({"type": "ping", "ref": "r" * 65})
    with pytest.raises(WireError, match=r"ping\.ref: 0 characters"):
        check_client_message({"type": "ping", "ref": ""})
    with pytest.raises(WireError, match=r"user_left: unexpected ref"):
        check_server_message({**BUILT["user_left"], "ref": "r1"})  # a broadcast answers no one


def _with(message, path, value):
    message = json.loads(json.dumps(message))
    node = message
    for step in path[:-1]:
        node = node[step]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return message


@pytest.mark.parametrize(
    "name,path,value,error",
    [
        ("scan_added", ("data", "scanData", "id"), KeyError, r"scan_added\.data\.scanData: missing id"),
        ("scan_added", ("data", "scanned"), 1, r"scan_added\.data: unexpected scanned"),
        ("scan_added", ("data", "year"), "2025", r"scan_added\.data\.year: expected an integer"),
        ("scan_added", ("data", "seq"), True, r"data\.seq: expected an integer, got a boolean"),
        ("scan_added", ("data", "match"), "maybe", r"data\.match: 'maybe' is not one of"),
        ("scan_added_full", ("data", "progress", "found"), "2", r"progress\.found: expected an integer"),
        ("scan_added_full", ("data", "progress", "scanned"), 1, r"progress: unexpected scanned"),
        ("presence", ("data", "users", 0, "connections"), None, r"users\[0\]\.connections: .* got null"),
        ("snapshot", ("data", "scans", 0, "match"), KeyError, r"scans\[0\]: missing match"),
        ("error", ("data", "code"), "oops", r"error\.data\.code: 'oops' is not one of"),
        ("error_scan", ("data", "scanData", "user"), "x", r"error\.data\.scanData: unexpected user"),
        ("pong", ("data", "timestamp"), [1], r"pong\.data\.timestamp: expected text"),
        ("user_joined", ("data",), KeyError, r"user_joined: missing data"),
        ("user_joined", ("type",), "hello", r"unknown server message type 'hello'"),
        ("user_joined", ("type",), KeyError, r"unknown server message type None"),
    ],
)
def test_a_wrong_server_frame_is_refused_saying_where(name, path, value, error):
    with pytest.raises(WireError, match=error):
        check_server_message(_with(BUILT[name], path, value))


def test_a_server_frame_that_is_not_an_object_is_refused():
    with pytest.raises(WireError, match="a message is an object, not a list"):
        check_server_message([])


@pytest.mark.parametrize(
    "message",
    [
        {"type": "ping"},
        {"type": "ping", "data": {"timestamp": 17}},
        {"type": "resume", "data": {"since": 0}},
        {"type": "user_joined", "data": {"agency": "Alfa Romeo", "month": "10", "year": 2025, "userId": "u"}},
        {"type": "scan_added", "data": {"scanData": {"code": "A1", "id": str(uuid.uuid4())}}},
        {"type": "scan_removed", "data": {"agency": "Alfa Romeo", "scanData": {"code": "A1"}}, "ref": "9"},
        {"type": "inventory_completed", "data": {"completedBy": "Ana", "inventoryId": "inv_123"}},
    ],
)
def test_protocol_v1_client_messages_are_accepted(message):
    check_client_message(message)


@pytest.mark.parametrize(
    "message,error",
    [
        ({"type": "pong", "data": {}}, r"unknown client message type 'pong'"),
        ({"type": "resume", "data": {"since": "1"}}, r"resume\.data\.since: expected an integer"),
        ({"type": "resume", "data": {}}, r"resume\.data: missing since"),
        ({"type": "scan_added", "data": {"scanData": {}}}, r"scan_added\.data\.scanData: missing code"),
        ({"type": "scan_added", "data": {"code": "A1"}}, r"scan_added\.data: missing scanData"),
        ({"type": "ping", "data": {"timestamp": None}}, r"ping\.data\.timestamp: expected text"),
        ({"type": "ping", "extra": 1}, r"ping: unexpected extra"),
    ],
)
def test_a_wrong_client_message_is_refused_saying_where(message, error):
    with pytest.raises(WireError, match=error):
        check_client_message(message)


def test_protocol_reexports_the_declared_constants():
    for name in dir(wire):
        if (name.startswith("CLOSE_") and name != "CLOSE_CODES") or name.endswith("_TYPES"):
            assert getattr(protocol, name) == getattr(wire, name), name
    assert set(wire.SERVER_TYPES) >= wire.PRESENCE_CHATTER


def test_wire_is_django_free():
    tree = ast.parse((ROOT / "realtime" / "wire.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"types", "typing"}, imported


# The live page's JS.

JS = ROOT / "static" / "js"
STANDARD_CLOSE_CODES = range(1000, 1016)  # RFC 6455's


def _js(name: str) -> str:
    text = (JS / name).read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # without comments
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def _strings(text: str) -> set[str]:
    return set(re.findall(r'"([a-z_]+)"', text))


def _block(text: str, opening: str) -> str:
    """The text from `opening` to its matching closing bracket."""
    start = text.index(opening) + len(opening) - 1
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "(": 1, "[": 1, "}": -1, ")": -1, "]": -1}.get(text[index], 0)
        if depth == 0:
            return text[start : index + 1]
    raise AssertionError(f"unbalanced {opening}")


def test_the_js_close_codes_are_wires():
    client = _js("live-client.js")
    named = dict(re.findall(r"const (CLOSE_[A-Z_]+) = (\d+);", client))
    assert named, "no CLOSE_ constants found in live-client.js"
    for name, value in named.items():
        if hasattr(wire, name):
            assert getattr(wire, name) == int(value), name
        else:
            assert int(value) in STANDARD_CLOSE_CODES, f"{name} = {value} is neither wire's nor standard"
    final = re.search(r"FINAL_CLOSE_CODES = new Set\(\[([\d,\s]+)\]\)", client)
    assert final, "FINAL_CLOSE_CODES not found"
    codes = {int(code) for code in final.group(1).split(",")}
    assert codes <= set(wire.CLOSE_CODES), codes


def test_the_js_handles_every_server_type_and_sends_only_client_types():
    client = _js("live-client.js")
    switch = _block(client, "switch (message.type) {")
    handled = set(re.findall(r'case "([a-z_]+)":', switch))
    assert handled <= set(wire.SERVER_TYPES), handled - set(wire.SERVER_TYPES)
    assert set(wire.SERVER_TYPES) - handled == {wire.PONG}  # pong needs nothing: `default`
    sent = set(re.findall(r'type: "([a-z_]+)"', client))
    assert sent and sent <= set(wire.CLIENT_TYPES), sent


def test_the_js_error_codes_are_wires():
    client, page = _js("live-client.js"), _js("live-page.js")
    codes = _strings(_block(client, "REPLY_ERROR_CODES = new Set(["))
    assert codes == wire.REFUSING_ERROR_CODES  # the page settles as refused what wire says
    assert set(wire.ERROR_CODES) >= wire.REFUSING_ERROR_CODES
    for text in (client, page):
        codes |= set(re.findall(r'code === "([a-z_]+)"', text))
    codes |= set(
        re.findall(
            r'case "([a-z_]+)":', _block(page, "function refusalReason(item, code, message, details) {")
        )
    )
    assert codes, "no error codes found in the JS"
    assert codes <= set(wire.ERROR_CODES), codes - set(wire.ERROR_CODES)


# docs/protocol.md's tables.


def _section(title: str) -> str:
    text = (ROOT / "docs" / "protocol.md").read_text()
    start = text.index(f"\n{title}\n")
    end = text.find("\n#", start + len(title) + 2)
    return text[start : end if end >= 0 else None]


def _first_column(section: str) -> list[str]:
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("| ---")]
    return [row.split("|")[1].strip() for row in rows[1:]]  # without the header


def _ticked(cells: list[str]) -> set[str]:
    return {name for cell in cells for name in re.findall(r"`([a-z_]+)`", cell)}


def test_the_docs_message_types_are_wires():
    assert _ticked(_first_column(_section("## Client -> server"))) == set(wire.CLIENT_TYPES)
    assert _ticked(_first_column(_section("## Server -> client"))) == set(wire.SERVER_TYPES)


def test_the_docs_error_codes_are_wires():
    assert _ticked(_first_column(_section("### Error codes"))) == set(wire.ERROR_CODES)


def test_the_docs_close_codes_are_wires():
    section = _section("### Refusals and close codes")
    rows = [line.split("|")[1:3] for line in section.splitlines() if re.match(r"\| \d{4} \|", line)]
    assert {int(close) for close, _codes in rows} == set(wire.CLOSE_CODES)
    assert _ticked([codes for _close, codes in rows]) <= set(wire.ERROR_CODES)


def test_the_docs_name_the_contract_protocol_v1():
    text = (ROOT / "docs" / "protocol.md").read_text()
    assert "protocol v1" in text and "seed" not in text.lower()
