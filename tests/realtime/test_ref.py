"""The optional client `ref`: echoed at the top level of the direct replies to its message."""

import json
import uuid

import pytest
from channels.db import database_sync_to_async

from inventory import services
from inventory.access import Room
from realtime.wire import REF_MAX_CHARS

from .helpers import joined

pytestmark = [pytest.mark.django_db(transaction=True)]


def scan(code, scan_id=None):
    return {"scanData": {"code": code, **({"id": scan_id} if scan_id else {})}}


async def test_a_pong_carries_the_ping_s_ref(ana):
    async with joined(ana) as client:
        await client.send("ping", {"timestamp": "t1"}, ref="p-1")
        pong = await client.receive_type("pong")
        assert pong["ref"] == "p-1" and pong["data"]["timestamp"] == "t1"
        await client.send("ping", {})
        assert "ref" not in await client.receive_type("pong")


async def test_the_sender_s_own_scan_carries_its_ref_and_no_one_else_s_does(ana, luis):
    scan_id = str(uuid.uuid4())
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan("A1", scan_id), ref="r-1")
        own = await ana_ws.receive_type("scan_added")
        assert own["ref"] == "r-1" and own["data"]["scanData"]["id"] == scan_id
        assert "ref" not in await luis_ws.receive_type("scan_added")
        # Removal and completion, too; a code-only scan is matched by the id the server gave it.
        await ana_ws.send("scan_added", scan("A2"), ref="r-2")
        assert (await ana_ws.receive_type("scan_added"))["ref"] == "r-2"
        await ana_ws.send("scan_removed", scan("A1"), ref="r-3")
        assert (await ana_ws.receive_type("scan_removed"))["ref"] == "r-3"
        assert "ref" not in await luis_ws.receive_type("scan_added")
        assert "ref" not in await luis_ws.receive_type("scan_removed")
        await ana_ws.send("inventory_completed", {}, ref="r-4")
        assert (await ana_ws.receive_type("inventory_completed"))["ref"] == "r-4"
        assert "ref" not in await luis_ws.receive_type("inventory_completed")


async def test_several_requests_in_flight_are_each_answered_once_with_their_ref(ana):
    refs = [f"ref-{i}" for i in range(8)]
    async with joined(ana) as client:
        for i, ref in enumerate(refs):
            await client.send("scan_added", scan(f"C{i}", str(uuid.uuid4())), ref=ref)
        answers = await client.receive_types(8)
        assert sorted(message["ref"] for message in answers) == sorted(refs)
        assert {m["ref"]: m["data"]["scanData"]["code"] for m in answers} == {
            r: f"C{i}" for i, r in enumerate(refs)
        }
        assert await client.nothing()


async def test_a_replayed_scan_and_an_error_carry_the_ref(ana, luis):
    scan_id = str(uuid.uuid4())
    async with joined(ana) as ana_ws, joined(luis) as luis_ws:
        await ana_ws.send("scan_added", scan("VIN1", scan_id), ref="first")
        assert (await ana_ws.receive_type("scan_added"))["ref"] == "first"
        await ana_ws.send("scan_added", scan("VIN1", scan_id), ref="retry")
        again = await ana_ws.receive_type("scan_added")
        assert again["ref"] == "retry" and again["data"]["replayed"] is True
        await luis_ws.receive_type("scan_added")
        await luis_ws.send("scan_added", scan("VIN1"), ref="dup")
        error = await luis_ws.receive_type("error")
        assert error["ref"] == "dup" and error["data"]["code"] == "duplicate_scan"
        await luis_ws.send("dance", {}, ref="what")
        error = await luis_ws.receive_type("error")
        assert error["ref"] == "what" and error["data"]["code"] == "unknown_type"
        await luis_ws.send("scan_added", "x", ref="bad-data")
        error = await luis_ws.receive_type("error")
        assert error["ref"] == "bad-data" and error["data"]["code"] == "invalid_data"
        # A failed request leaves no ref behind: the next broadcast of that code is not labelled.
        await ana_ws.send("scan_removed", scan("VIN1"))
        assert "ref" not in await luis_ws.receive_type("scan_removed")


async def test_the_resume_reply_carries_the_ref(ana, luis, alfa):
    inventory = await database_sync_to_async(services.inventory_get_or_open)(room=Room(alfa, 10, 2025))
    for code in ("A1", "A2"):
        await database_sync_to_async(services.scan_record)(inventory=inventory, user=luis, code=code)
    async with joined(ana) as client:
        await client.send("resume", {"since": 0}, ref="again")
        replayed = await client.receive_types(2)
        assert [(m["ref"], m["data"]["seq"]) for m in replayed] == [("again", 1), ("again", 2)]
        await client.send("resume", {"since": 99}, ref="snap")
        assert (await client.receive_type("snapshot"))["ref"] == "snap"


@pytest.mark.parametrize(
    "ref", ["", "x" * (REF_MAX_CHARS + 1), 5, True, ["a"], {"a": 1}, "tab\there", "nl\n"]
)
async def test_an_invalid_ref_is_an_invalid_message(ana, ref):
    async with joined(ana) as client:
        await client.ws.send_to(text_data=json.dumps({"type": "ping", "data": {}, "ref": ref}))
        error = await client.receive_type("error")
        assert error["data"]["code"] == "invalid_message"
        assert "ref" not in error
        await client.send("ping", {}, ref="x" * REF_MAX_CHARS)
        assert (await client.receive_type("pong"))["ref"] == "x" * REF_MAX_CHARS


@pytest.mark.parametrize("code", [["A1"], {"code": "A1"}, 7, None])
async def test_a_scan_whose_code_is_not_text_is_refused_with_its_ref_not_an_internal_error(ana, code):
    # Found by the fuzz test: a list or object as the code reached the ref bookkeeping unchecked.
    async with joined(ana) as client:
        await client.send("scan_added", {"scanData": {"code": code}}, ref="bad-code")
        error = await client.receive_type("error")
        assert error["ref"] == "bad-code"
        assert error["data"]["code"] not in {"internal_error"}, error
        await client.send("scan_removed", {"scanData": {"code": code}}, ref="bad-removal")
        error = await client.receive_type("error")
        assert error["ref"] == "bad-removal" and error["data"]["code"] != "internal_error", error
        await client.send("scan_added", scan("OK-1"), ref="after")
        assert (await client.receive_type("scan_added"))["ref"] == "after"


# Found by the room's state machine (tests/realtime/test_room_machine.py): a removal by code sent
# as "b2" of the scan stored as "B2" lost its ref when the room's broadcast reached the socket
# before the command had re-keyed the ref by the scan's id; the client never got its answer.
@pytest.mark.parametrize("sent", ["b2", " B2 ", "B2"])
def test_a_removal_by_code_keeps_its_ref_when_its_broadcast_comes_first(sent):
    from realtime.relaying import OwnEvents

    own = OwnEvents(user_id=7)
    broadcast = {
        "type": "scan_removed",
        "data": {"userId": "7", "scanData": {"code": "B2", "id": str(uuid.uuid4())}},
    }
    with own.expecting("scan_removed", {"code": sent}, "r-1") as expected:
        assert own.ref_of(broadcast) == "r-1"  # the relay, before the service call has returned
        expected.arrives(None)
    assert own.refs == {}


# Found by the room's state machine: a socket that sent inventory_completed twice without waiting
# lost the first (winning) request's ref to the second, which replaced it and then failed.
def test_a_second_identical_request_does_not_take_the_ref_of_the_first():
    from realtime.relaying import OwnEvents

    own = OwnEvents(user_id=7)
    with own.expecting("inventory_completed", {}, "r-1") as first:
        first.arrives(None)  # completed; its broadcast is on its way
    with pytest.raises(RuntimeError), own.expecting("inventory_completed", {}, "r-2"):
        raise RuntimeError("refused: already completed")
    assert own.ref_of({"type": "inventory_completed", "data": {}}) == "r-1"
