"""uvicorn, as `manage.py serve --server uvicorn` runs it: an h11 protocol with a header deadline,
and a server whose graceful stop ends the process with status 0.

uvicorn times out only an idle keep-alive connection after a response, so a client that sends one
header line now and then holds a connection forever (slowloris). Here, as on daphne
(realtime/daphne_server.py), the request line and headers must be complete within
HTTP_HEADER_TIMEOUT of the connection opening or of the previous response: a partial request is
answered 408 and closed, an idle connection is closed.

uvicorn already stops in realtime.shutdown's order (stop listening, close every socket with 1012,
wait for the requests and tasks in flight up to `timeout_graceful_shutdown`), but then raises the
signal it caught again, so a SIGTERM it handled well still ends the process as killed by SIGTERM
(status -15, which supervisors report as a crash). GracefulServer exits normally instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading

import h11
import uvicorn
from django.conf import settings
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import shutdown

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 16\r\n\r\nRequest Timeout\n"
)


class HeaderDeadlineH11Protocol(H11Protocol):
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request's headers are in
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        # Armed before uvicorn reads a pipelined request, whose complete headers disarm it again.
        self._arm_header_deadline()
        super().on_response_complete()
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def connection_lost(self, exc):
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        timeout = settings.HTTP_HEADER_TIMEOUT
        if timeout and not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(timeout, self._headers_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # a request begun and not finished in time
            logger.info("Closed %s: request headers not complete in time", self.client)
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        self.transport.close()


class GracefulServer(uvicorn.Server):
    """uvicorn's server, whose stop on SIGTERM or Ctrl-C ends the process normally (status 0)."""

    # Everything in flight finished within `timeout_graceful_shutdown`.
    drained = True

    def handle_exit(self, sig, frame) -> None:
        if not self.should_exit:  # the first signal: the stop begins
            shutdown.exit_if_stuck()
        super().handle_exit(sig, frame)

    async def _wait_tasks_to_complete(self) -> None:
        # uvicorn's shutdown cancels this wait at its timeout, then the tasks still running: a
        # request not answered yet would get uvicorn's 500; it gets the 503 that says why instead.
        self.drained = False
        try:
            await super()._wait_tasks_to_complete()
        except asyncio.CancelledError:
            await self._answer_abandoned()
            raise
        self.drained = True

    async def _answer_abandoned(self) -> None:
        headers, body = shutdown.abandoned_response()
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is None or cycle.response_started or cycle.disconnected:
                continue
            with contextlib.suppress(Exception):
                await cycle.send({"type": "http.response.start", "status": 503, "headers": headers})
                await cycle.send({"type": "http.response.body", "body": body})

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {number: signal.signal(number, self.handle_exit) for number in shutdown.STOP_SIGNALS}
        try:
            yield
        finally:
            for number, handler in original.items():
                signal.signal(number, handler)
        # Unlike uvicorn's, the caught signal is not raised again: the stop it asked for is done.
