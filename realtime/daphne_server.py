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
- SIGTERM (or Ctrl-C) stops gracefully, in realtime.shutdown's order: stop listening, close every
  socket with 1012, let the requests and socket writes in flight finish (SHUTDOWN_TIMEOUT), then
  stop the reactor. Twisted's own handler stopped the reactor at once: daphne cancelled every
  application, every socket was dropped (1006), and a worker thread still publishing after commit
  or checking health waited forever on the stopped loop, and held the process's exit with it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import weakref
from urllib.parse import unquote

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory as DaphneHTTPFactory
from daphne.http_protocol import WebRequest
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocketProtocol
from django.conf import settings
from twisted.internet import reactor, tcp
from twisted.web import http

from . import metrics, shutdown
from .conf import realtime_settings
from .wire import CLOSE_MESSAGE_TOO_BIG, CLOSE_SERVICE_RESTART

logger = logging.getLogger(__name__)

# How long the reactor's stop waits for the applications it cancels (those the drain gave up on).
KILL_GRACE_SECONDS = 1.0

REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 16\r\n\r\nRequest Timeout\n"
)


class HTTPChannel(http.HTTPChannel):
    """Twisted's HTTP channel, with a deadline for each request's line and headers.

    While the server stops, a channel closes once its request is answered (no keep-alive).
    """

    headerTimeout: float | None = None  # noqa: N815 (Twisted's naming)
    _header_deadline = None
    _header_bytes = 0
    # Every open channel, for the stop: idle ones are closed, busy ones close after their answer.
    open_channels: weakref.WeakSet = weakref.WeakSet()
    stopping = False

    def connectionMade(self):  # noqa: N802
        super().connectionMade()
        HTTPChannel.open_channels.add(self)
        self._arm_header_deadline()

    def dataReceived(self, data):  # noqa: N802
        if self._header_deadline is not None:
            self._header_bytes += len(data)
        super().dataReceived(data)

    def allHeadersReceived(self):  # noqa: N802
        self._disarm_header_deadline()
        super().allHeadersReceived()

    def requestDone(self, request):  # noqa: N802
        if HTTPChannel.stopping:
            self.persistent = False  # Twisted closes the connection once the answer is written
        # Armed before Twisted reads any pipelined request, whose complete headers disarm it again.
        if self.persistent:
            self._arm_header_deadline()
        super().requestDone(request)

    def connectionLost(self, reason):  # noqa: N802
        self._disarm_header_deadline()
        HTTPChannel.open_channels.discard(self)
        super().connectionLost(reason)

    def close_if_idle(self) -> None:
        """Close a keep-alive connection waiting for its next request; one being answered closes after."""
        transport = self.transport
        if transport is None or self.request_begun or self._handlingRequest or self.requests:
            return
        # Once upgraded to a WebSocket the TCP transport feeds the socket's protocol, not this channel.
        if isinstance(getattr(transport, "protocol", None), DaphneWebSocketProtocol):
            return
        transport.loseConnection()

    @property
    def request_begun(self) -> bool:
        """Some of a request's line or headers arrived, not all yet (counted while a deadline is armed)."""
        return bool(self._header_bytes) and not self._handlingRequest

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

    def serverSend(self, content, binary=False):  # noqa: N802 (daphne's name)
        # The room's relay sending to a socket that is closing or closed (its disconnect not yet
        # handled): the client is gone and resumes from its seq. autobahn raises `Disconnected`,
        # which each relay logged as an error with its traceback, hundreds after a restart.
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            logger.debug("Dropped a message to %s: the socket is closing", self.client_addr)
            return
        super().serverSend(content, binary)

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

    def close_for_restart(self) -> bool:
        """Tell an open socket to reconnect elsewhere (1012); False if it is not open (yet)."""
        if self.state != self.STATE_OPEN:
            return False
        # Sent as the frame it is: autobahn's sendClose only takes 1000 and 3000-4999 from us.
        self.sendCloseFrame(code=CLOSE_SERVICE_RESTART, reasonUtf8=b"server restarting", isReply=False)
        return True

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
    # The stop has begun; drained: everything in flight finished within SHUTDOWN_TIMEOUT.
    stopping = False
    drained = True

    def listen_success(self, port):
        self._ports = [*getattr(self, "_ports", []), port]
        # Port.transport is the class Twisted makes each accepted connection with (documented as
        # replaceable). Only a port making plain tcp.Server connections is changed; a UNIX socket
        # (daphne -u) or a port whose transport was replaced by someone else is left alone.
        if isinstance(port, tcp.Port) and port.transport is tcp.Server:
            port.transport = WriteNowServer
        super().listen_success(port)

    def run(self):
        # run() makes the factories, then starts the reactor: adjust them once they exist, before
        # the first connection is accepted. Twisted installs its signal handlers while starting
        # ("during startup"); ours replace them once it runs ("after startup").
        reactor.callWhenRunning(self._adjust_factories)
        reactor.callWhenRunning(self._handle_stop_signals)
        super().run()

    def _adjust_factories(self):
        self.http_factory.__class__ = HTTPFactory
        self.http_factory.header_timeout = settings.HTTP_HEADER_TIMEOUT or None
        self.ws_factory.protocol = WebSocketProtocol
        self.ws_factory.setProtocolOptions(failByDrop=False)

    # The graceful stop (realtime.shutdown).

    def _handle_stop_signals(self):
        for number in shutdown.STOP_SIGNALS:
            signal.signal(number, self._stop_signalled)

    def _stop_signalled(self, number, frame):
        # A signal handler may run between any two lines of the loop: hand over to the reactor.
        if self.stopping:  # a second signal: stop now, whatever is still in flight
            logger.warning("Second %s: stopping now", signal.Signals(number).name)
            reactor.callFromThread(self.stop)
            return
        self.stopping = True
        shutdown.exit_if_stuck()
        reactor.callFromThread(self._begin_stop, signal.Signals(number).name)

    def _begin_stop(self, reason: str) -> None:
        asyncio.ensure_future(self.stop_gracefully(reason), loop=reactor._asyncioEventloop)

    async def stop_gracefully(self, reason: str = "stop") -> None:
        """Stop listening, close every socket with 1012, drain what is in flight, then stop the reactor."""
        self.stopping = True
        try:
            await self._drain(reason)
        except Exception:
            self.drained = False
            logger.exception("The graceful stop failed: stopping now")
        finally:
            self.stop()  # whatever happened above, the process must not be left running

    async def _drain(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + shutdown.timeout()
        for port in getattr(self, "_ports", []):
            port.stopListening()
        HTTPChannel.stopping = True
        for channel in list(HTTPChannel.open_channels):
            channel.close_if_idle()
        told = self._close_sockets()
        logger.info("%s: stopped listening; told %d socket(s) to reconnect (1012)", reason, told)
        # A socket still joining when the stop began is told as soon as it opens.
        while (busy := self._busy()) and loop.time() < deadline:
            self._close_sockets()
            await asyncio.sleep(0.05)
        if busy:
            self.drained = False
            self._answer_abandoned(busy)
            logger.error(
                "Stopping with %d request(s) or socket(s) still busy after %ss (SHUTDOWN_TIMEOUT)",
                len(busy),
                shutdown.timeout(),
            )
        else:
            logger.info("Drained: every request and socket write in flight finished; stopping")

    def _answer_abandoned(self, busy: list) -> None:
        """Answer 503 each request the drain gives up on before its application answered it."""
        headers, body = shutdown.abandoned_response()
        for protocol in busy:
            if isinstance(protocol, WebRequest) and not protocol._response_started:
                protocol.handle_reply({"type": "http.response.start", "status": 503, "headers": headers})
                protocol.handle_reply({"type": "http.response.body", "body": body})

    def _close_sockets(self) -> int:
        return sum(
            1
            for protocol in list(self.connections)
            if isinstance(protocol, WebSocketProtocol) and protocol.close_for_restart()
        )

    def _busy(self) -> list:
        """Connections whose application still runs (a request being answered, a socket's handler),
        and requests still arriving (their headers are bounded by HTTP_HEADER_TIMEOUT)."""
        running = [
            protocol
            for protocol, details in list(self.connections.items())
            if (application := details.get("application_instance")) is not None and not application.done()
        ]
        return running + [channel for channel in list(HTTPChannel.open_channels) if channel.request_begun]

    def kill_all_applications(self):
        """daphne's, without its KeyError for a connection whose application was already reaped, and
        waiting at most KILL_GRACE_SECONDS for what it cancels.

        A request cancelled while its worker thread still runs (a write held past the timeout) waits
        for that thread (asgiref's ThreadSensitiveContext joins it), and daphne waited for it before
        the reactor could stop: the process never exited.
        """
        for details in self.connections.values():
            details.setdefault("application_instance", _done_future())
        waiting = super().kill_all_applications()

        def gave_up(result, timeout):
            logger.error("Applications still running %ss after they were cancelled: stopping anyway", timeout)
            return result

        waiting.addTimeout(KILL_GRACE_SECONDS, reactor, onTimeoutCancel=gave_up)
        return waiting


def _done_future() -> asyncio.Future:
    future = reactor._asyncioEventloop.create_future()
    future.set_result(None)
    return future


class Daphne(CommandLineInterface):
    server_class = Server
