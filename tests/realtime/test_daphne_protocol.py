"""The product's daphne WebSocket protocol (realtime/daphne_server.py), without a network."""

from __future__ import annotations

import pytest

from realtime.daphne_server import WebSocketProtocol


class Wire:
    def __init__(self):
        self.written = b""

    def write(self, data):
        self.written += data


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
def test_a_message_to_a_closing_socket_is_dropped_without_an_error(state):
    """The room's relay may send to a socket whose close is not handled yet: nothing to send there."""
    protocol = WebSocketProtocol()
    protocol.state = getattr(protocol, state)
    protocol.transport = Wire()
    protocol.client_addr = ["127.0.0.1", 50000]

    protocol.serverSend('{"type":"scan_added"}')

    assert protocol.transport.written == b""


def test_autobahn_still_refuses_what_daphne_asks_of_a_closed_socket():
    """The guard is needed: without it, autobahn raises on a send to a closed protocol."""
    from autobahn.exception import Disconnected
    from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocketProtocol

    protocol = DaphneWebSocketProtocol()
    protocol.state = protocol.STATE_CLOSED
    protocol.client_addr = ["127.0.0.1", 50000]
    with pytest.raises(Disconnected):
        protocol.serverSend('{"type":"scan_added"}')
