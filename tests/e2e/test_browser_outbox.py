"""The page's outbox sends several queued requests at once, each matched to its answer by `ref`."""

import json

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import ROOM, row, scan, stored_codes, wait_online

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

MAX_IN_FLIGHT = 8  # static/js/live-client.js


def test_queued_scans_are_sent_concurrently_and_each_confirmed_once(open_page, ana, alfa):
    page = open_page(ana, ROOM)
    frames = []  # ("sent" | "received", message), in the order the socket saw them

    def watch(ws):
        ws.on("framesent", lambda payload: frames.append(("sent", json.loads(payload))))
        ws.on("framereceived", lambda payload: frames.append(("received", json.loads(payload))))

    page.on("websocket", watch)
    wait_online(page)
    page.context.set_offline(True)
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    codes = [f"MANY-{i:02}" for i in range(12)]
    for code in codes:
        scan(page, code)
        expect(row(page, code, "pending")).to_be_visible()

    page.context.set_offline(False)
    wait_online(page)
    for code in codes:
        expect(row(page, code)).to_be_visible(timeout=10000)
    expect(page.locator("#count-pending")).to_have_text("0")
    assert stored_codes() == codes

    sent = [message for way, message in frames if way == "sent" and message["type"] == "scan_added"]
    # Each queued scan sent once, with its id as its ref.
    assert sorted(message["data"]["scanData"]["code"] for message in sent) == codes
    assert all(message["ref"] == message["data"]["scanData"]["id"] for message in sent)
    refs = {message["ref"] for message in sent}
    answers = [m for way, m in frames if way == "received" and m.get("ref") in refs]
    # Each confirmed once: its own scan_added, carrying its ref.
    assert sorted(m["ref"] for m in answers) == sorted(refs)
    assert all(m["type"] == "scan_added" and m["data"]["scanData"]["id"] == m["ref"] for m in answers)

    # Several in flight at once, never more than the outbox's limit.
    in_flight, most = set(), 0
    for way, message in frames:
        if way == "sent" and message.get("ref") in refs:
            in_flight.add(message["ref"])
            most = max(most, len(in_flight))
        elif way == "received" and message.get("ref") in in_flight:
            in_flight.discard(message["ref"])
    assert 2 <= most <= MAX_IN_FLIGHT, most


def test_a_later_answer_to_a_request_already_settled_shows_nothing(open_page, ana, alfa):
    """Two sockets asking for the same change at once: the broadcast that came first settled the
    request; the server's own answer that follows with the same ref (docs/protocol.md) is no news."""
    page = open_page(ana, ROOM)
    routes = []

    def relay(ws):  # the real server, with a hand on the socket to add what the server would send
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(ws.send)
        routes.append(ws)

    page.route_web_socket("**/ws/inventory/**", relay)
    page.reload()
    wait_online(page)
    scan(page, "RACE-01")
    expect(row(page, "RACE-01")).to_be_visible()
    ref = row(page, "RACE-01").get_attribute("data-id")
    assert ref

    late = {"message": "Ya escaneaste RACE-01.", "code": "duplicate_scan", "scanData": {"code": "RACE-01"}}
    routes[-1].send(json.dumps({"type": "error", "data": late, "ref": ref}))
    # An error for a request in flight or no request at all is shown: this one is not.
    routes[-1].send(json.dumps({"type": "error", "data": {"message": "Aviso del servidor.", "code": "x"}}))
    expect(page.locator("#notices")).to_contain_text("Aviso del servidor.")
    expect(page.locator("#notices")).not_to_contain_text("Ya escaneaste RACE-01.")
    expect(row(page, "RACE-01")).to_be_visible()
    assert stored_codes() == ["RACE-01"]
