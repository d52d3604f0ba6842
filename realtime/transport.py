"""daphne, as `manage.py serve` runs it: two corrections to what its WebSocket layer (autobahn) does.

- autobahn lets an application close a socket only with 1000 or 3000-4999, so the consumer's
  1009 (message too big, RFC 6455 7.4.1: a server's code to send) raised inside daphne and the
  client saw 1011. Here a 1009 from the application goes out as the close frame it is.
- autobahn drops TCP without a close frame when a client breaks the protocol (`failByDrop`), so a
  frame over daphne's own limit reached the client as 1006. Here it gets autobahn's close code.
"""

from __future__ import annotations

from daphne.cli import CommandLineInterface
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocketProtocol
from twisted.internet import reactor

from .protocol import CLOSE_MESSAGE_TOO_BIG


class WebSocketProtocol(DaphneWebSocketProtocol):
    def serverClose(self, code=None):  # noqa: N802 (daphne's name)
        if code == CLOSE_MESSAGE_TOO_BIG and self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, isReply=False)
            return
        super().serverClose(code)


class Server(DaphneServer):
    def run(self):
        # run() makes the factory, then starts the reactor: adjust the factory once it exists.
        reactor.callWhenRunning(self._adjust_websockets)
        super().run()

    def _adjust_websockets(self):
        self.ws_factory.protocol = WebSocketProtocol
        self.ws_factory.setProtocolOptions(failByDrop=False)


class Daphne(CommandLineInterface):
    server_class = Server
