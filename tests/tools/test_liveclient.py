"""The reference client's own names agree with the protocol (until both come from realtime.wire)."""

from realtime import protocol
from tools import liveclient
from tools.liveclient import with_since


def test_the_clients_protocol_names_are_the_servers():
    assert {protocol.USER_JOINED, protocol.USER_LEFT, protocol.PRESENCE} == liveclient.CHATTER
    assert (liveclient.ERROR, liveclient.RESUME) == (protocol.ERROR, protocol.RESUME)
    assert liveclient.CLOSE_COMPLETED == protocol.CLOSE_COMPLETED
    assert liveclient.CLOSE_ROOM_FULL == protocol.CLOSE_ROOM_FULL


def test_a_resuming_client_adds_since_to_the_room_url():
    assert with_since("ws://h/ws/inventory/a/1/2025", None) == "ws://h/ws/inventory/a/1/2025"
    assert with_since("ws://h/ws/inventory/a/1/2025", 7) == "ws://h/ws/inventory/a/1/2025?since=7"
    assert with_since("ws://h/x?token=t", 0) == "ws://h/x?token=t&since=0"
