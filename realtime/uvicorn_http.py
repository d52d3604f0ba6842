"""uvicorn's h11 protocol, as `manage.py serve --server uvicorn` runs it, with a header deadline.

uvicorn times out only an idle keep-alive connection after a response, so a client that sends one
header line now and then holds a connection forever (slowloris). Here, as on daphne
(realtime/daphne_server.py), the request line and headers must be complete within
HTTP_HEADER_TIMEOUT of the connection opening or of the previous response: a partial request is
answered 408 and closed, an idle connection is closed.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from django.conf import settings
from uvicorn.protocols.http.h11_impl import H11Protocol

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
