"""daphne, as `manage.py serve` runs it: corrections to what its HTTP and WebSocket layers do.

- autobahn lets an application close a socket only with 1000 or 3000-4999, so the consumer's
  1009 (message too big, RFC 6455 7.4.1: a server's code to send) raised inside daphne and the
  client saw 1011. Here a 1009 from the application goes out as the close frame it is.
- autobahn drops TCP without a close frame when a client breaks the protocol (`failByDrop`), so a
  frame over daphne's own limit reached the client as 1006. Here it gets autobahn's close code.
- Twisted's HTTP channel only times out a connection idle for 60 s, so a client sending one header
  line every 30 s held it forever (slowloris). Here the request line and headers must be complete
  within HTTP_HEADER_TIMEOUT of the connection opening (or of the previous response): a partial
  request is answered 408 and closed, an idle keep-alive connection is closed.
- Each WebSocket ping's round trip (daphne pings every heartbeat) is measured for the metrics.
- Twisted's TCP transport buffers every write and registers for write events to send it on the
  next loop pass (two `epoll_ctl` per WebSocket frame). Here a write goes to the socket at once
  when nothing is waiting, as asyncio's transports do (WriteNowServer).
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory as DaphneHTTPFactory
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocketProtocol
from django.conf import settings
from twisted.internet import reactor, tcp
from twisted.web import http

from . import metrics
from .conf import realtime_settings
from .protocol import CLOSE_MESSAGE_TOO_BIG

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 16\r\n\r\nRequest Timeout\n"
)


class HTTPChannel(http.HTTPChannel):
    """Twisted's HTTP channel, with a deadline for each request's line and headers."""

    headerTimeout: float | None = None  # noqa: N815 (Twisted's naming)
    _header_deadline = None
    _header_bytes = 0

    def connectionMade(self):  # noqa: N802
        super().connectionMade()
        self._arm_header_deadline()

    def dataReceived(self, data):  # noqa: N802
        if self._header_deadline is not None:
            self._header_bytes += len(data)
        super().dataReceived(data)

    def allHeadersReceived(self):  # noqa: N802
        self._disarm_header_deadline()
        super().allHeadersReceived()

    def requestDone(self, request):  # noqa: N802
        # Armed before Twisted reads any pipelined request, whose complete headers disarm it again.
        if self.persistent:
            self._arm_header_deadline()
        super().requestDone(request)

    def connectionLost(self, reason):  # noqa: N802
        self._disarm_header_deadline()
        super().connectionLost(reason)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if self.headerTimeout:
            self._header_bytes = 0
            self._header_deadline = self.callLater(self.headerTimeout, self._headers_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            if self._header_deadline.active():
                self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport is None or self._handlingRequest:
            return
        if self._header_bytes:
            # A request begun and not finished in time: say so, as Apache's mod_reqtimeout does.
            peer = self.transport.getPeer()
            logger.info(
                "Closed %s:%s: request headers not complete within %ss",
                getattr(peer, "host", "?"),
                getattr(peer, "port", "?"),
                self.headerTimeout,
            )
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        # Twisted's own timeout path: close, and abort if the client does not let go.
        self.timeoutConnection()


def _channel_factory() -> http._GenericHTTPChannelProtocol:
    """Twisted's protocol (HTTP/1.1, or HTTP/2 by ALPN) around our channel."""
    return http._GenericHTTPChannelProtocol(HTTPChannel())


class HTTPFactory(DaphneHTTPFactory):
    protocol = staticmethod(_channel_factory)
    header_timeout: float | None = None

    def buildProtocol(self, addr):  # noqa: N802
        protocol = super().buildProtocol(addr)
        protocol._channel.headerTimeout = self.header_timeout
        return protocol


class WebSocketProtocol(DaphneWebSocketProtocol):
    def serverClose(self, code=None):  # noqa: N802 (daphne's name)
        if code == CLOSE_MESSAGE_TOO_BIG and self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, isReply=False)
            return
        super().serverClose(code)

    def onOpen(self):  # noqa: N802
        super().onOpen()
        self._ping_room = room_of_path(getattr(self, "path", b""))
        if self._ping_room is not None:
            metrics.local.socket_opened(self._ping_room)

    def onClose(self, wasClean, code, reason):  # noqa: N802, N803
        room = getattr(self, "_ping_room", None)
        if room is not None:
            self._ping_room = None
            metrics.local.socket_closed(room)
        super().onClose(wasClean, code, reason)

    def onAutoPong(self, ping_sent, ping_seq, pong_received, pong_rtt, payload):  # noqa: N802
        """The round trip of daphne's heartbeat ping, in ms, for this socket's room."""
        room = getattr(self, "_ping_room", None)
        if room is not None:
            metrics.local.ping_round_trip(room, (pong_received - ping_sent) / 1e9)


def room_of_path(path: bytes | str) -> str | None:
    """`agency/month/year` of a room's socket path, as the client wrote it; None for other paths."""
    if isinstance(path, bytes):
        path = path.decode("latin-1")
    prefix = realtime_settings.WEBSOCKET_PATH.strip("/") + "/"
    path = unquote(path.split("?", 1)[0]).strip("/")
    if not path.startswith(prefix):
        return None
    parts = path[len(prefix) :].split("/")
    return "/".join(parts) if len(parts) == 3 and all(parts) else None


class WriteNowServer(tcp.Server):
    """A plain TCP connection whose writes go to the socket at once while nothing is waiting.

    Twisted's `write` only appends to its buffer and registers the connection for write events
    (`epoll_ctl`); the next loop pass sends, and unregisters it (another `epoll_ctl`). Here, when
    nothing is buffered, `write` calls `send` itself and hands Twisted only what the kernel did not
    take, so a slow reader is buffered, its producer paused and resumed, and a close waits for the
    buffer, all by Twisted as before. Bytes keep their order: once anything is buffered, every
    later write is buffered behind it until Twisted has sent the last byte.

    "Something is buffered" is read from Twisted's public writer calls, not its private buffers:
    `FileDescriptor.write`, `writeSequence`, `loseConnection` and `loseWriteConnection` call
    `startWriting` whenever they leave work for `doWrite`, and `doWrite` calls `stopWriting` only
    once its buffer is empty (tests/realtime/test_write_now.py checks this on the installed Twisted).
    """

    # True from startWriting until stopWriting: Twisted has bytes (or a close) waiting.
    _writer_registered = False
    # An aborted connection drops what it is given until Twisted calls connectionLost.
    _aborted = False

    def startWriting(self):  # noqa: N802 (Twisted's names)
        self._writer_registered = True
        super().startWriting()

    def stopWriting(self):  # noqa: N802
        self._writer_registered = False
        super().stopWriting()

    def abortConnection(self):  # noqa: N802
        self._aborted = True
        super().abortConnection()

    def write(self, data):
        if (
            self._writer_registered
            or self._aborted
            or not self.connected
            or self.disconnecting
            or self.TLS
            # A pull producer is asked for more only when Twisted's buffer empties: keep that.
            or (self.producer is not None and not self.streamingProducer)
            or not isinstance(data, bytes)
            or not data
        ):
            super().write(data)
            return
        try:
            sent = self.socket.send(data)
        except OSError:
            # The kernel buffer is full, or the connection is broken: Twisted's next write attempt
            # (doWrite) retries, or finds the error and closes the connection as it always has.
            sent = 0
        if sent < len(data):
            super().write(data[sent:])


class Server(DaphneServer):
    def listen_success(self, port):
        # Port.transport is the class Twisted makes each accepted connection with (documented as
        # replaceable). Only a port making plain tcp.Server connections is changed; a UNIX socket
        # (daphne -u) or a port whose transport was replaced by someone else is left alone.
        if isinstance(port, tcp.Port) and port.transport is tcp.Server:
            port.transport = WriteNowServer
        super().listen_success(port)

    def run(self):
        # run() makes the factories, then starts the reactor: adjust them once they exist, before
        # the first connection is accepted.
        reactor.callWhenRunning(self._adjust_factories)
        super().run()

    def _adjust_factories(self):
        self.http_factory.__class__ = HTTPFactory
        self.http_factory.header_timeout = settings.HTTP_HEADER_TIMEOUT or None
        self.ws_factory.protocol = WebSocketProtocol
        self.ws_factory.setProtocolOptions(failByDrop=False)


class Daphne(CommandLineInterface):
    server_class = Server
