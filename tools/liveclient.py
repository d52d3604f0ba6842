"""The reference live-room client: a WebSocket client that behaves as the live page does.

It joins a room (the token in the Authorization header, `?since=` to resume from a seq), waits for
`presence`, sends the client's messages, and reads the room's messages either on demand (`receive`,
`expect`, `nothing`, `wait_close`), in the background (`background=True`: everything kept in
`received`), or in a loop of its own (`run`, with a callback per message). Deliveries are tracked
by tools.tracking.DeliveryTracker, which answers with the resume the page would ask for.

The smoke check, the load test, the benchmark and the end-to-end tests all connect through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

# Protocol v1's names, from its Django-free declaration (the load test's workers run without Django).
from realtime.wire import (
    CLOSE_SERVICE_RESTART,
    ERROR,
    PRESENCE,
    RESUME,
    check_server_message,
)
from realtime.wire import PRESENCE_CHATTER as CHATTER

_CLOSED: dict[str, Any] = {"type": "__closed__"}


class CheckFailure(AssertionError):
    """The server did not behave as the protocol says; the message says why, for the operator."""


class Refused(CheckFailure):
    """The server (or the network) did not let the client in.

    `reason` is short and countable: `http_403`, `open_timeout`, `4429 room_full`, ...
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        close_code: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable  # the network or the server dropped the handshake unanswered
        self.close_code = close_code  # the WebSocket close code, when the handshake succeeded
        self.code = code  # the `error` message's code that came before the close, if any


def reconnect_delay(
    attempt: int, *, close_code: int | None = None, base: float = 0.5, ceiling: float = 15.0
) -> float:
    """Seconds before reconnect `attempt` (0-based), as the live page waits: half fixed, half random.

    0 after 1012 (the instance is stopping: another takes the socket at once).
    """
    if close_code == CLOSE_SERVICE_RESTART:
        return 0.0
    top = min(ceiling, base * 2 ** min(attempt, 20))
    return top / 2 + random.random() * top / 2


# After a 4503 every client of the cluster comes back at about the same time (Redis is back for
# all of them at once): up to this much more, at random, spreads their joins out (as the page).
UNAVAILABLE_JITTER_SECONDS = 3.0


def unavailable_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after a 4503: the server's `retryAfter` (else the backoff), plus jitter."""
    wait = retry_after if retry_after and retry_after > 0 else reconnect_delay(attempt)
    return wait + random.random() * UNAVAILABLE_JITTER_SECONDS


def with_since(url: str, since: int | None) -> str:
    """The room URL that resumes after `since` (the page's ?since=<last seq seen>)."""
    if since is None:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'since': since})}"


async def connect_socket(
    url: str, token: str | None = None, *, timeout: float = 10.0, **options
) -> ClientConnection:
    """Open the WebSocket (the handshake only); Refused says why it was not opened."""
    settings = {"max_size": 2**20, "open_timeout": timeout, "close_timeout": 2, "proxy": None} | options
    headers = {"Authorization": f"Token {token}"} if token else {}
    try:
        return await connect(url, additional_headers=headers, **settings)
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise Refused(f"handshake refused with HTTP {status} ({url})", reason=f"http_{status}") from None
    except InvalidURI as exc:
        raise Refused(f"cannot connect to {url}: {exc}", reason=f"{type(exc).__name__}: {exc}"[:80]) from None
    except TimeoutError:
        raise Refused(
            f"no handshake within {timeout:g} s ({url})", reason="open_timeout", retryable=True
        ) from None
    except (OSError, InvalidHandshake) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:80]
        raise Refused(f"cannot connect to {url}: {exc}", reason=reason, retryable=True) from None


def decode(text: str | bytes) -> dict[str, Any]:
    """One frame as a message; a frame that is not a JSON object becomes a `__not_json__` message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        message = json.loads(text)
    except ValueError:
        return {"type": "__not_json__", "data": {"text": text[:80]}}
    return message if isinstance(message, dict) else {"type": "__not_an_object__"}


class LiveClient:
    """One socket in one room. With `checked`, every message read is checked against protocol v1
    (realtime.wire.check_server_message): the end-to-end tests' client does, the load test's does not."""

    checked = False

    def __init__(self, ws: ClientConnection, url: str = ""):
        self.ws = ws
        self.url = url
        self.received: list[dict[str, Any]] = []
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._reader: asyncio.Task | None = None
        self.presence: dict[str, Any] | None = None  # the `presence` that let this client in

    @classmethod
    async def open(
        cls,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        greet: bool = True,
        since: int | None = None,
        background: bool = False,
        **options,
    ) -> LiveClient:
        """Connect; with `greet`, wait for `presence` (Refused says why the server closed instead)."""
        url = with_since(url, since)
        client = cls(await connect_socket(url, token, timeout=timeout, **options), url)
        if background:
            client.start_reading()
        if greet:
            await client.greeted(timeout=timeout)
        return client

    async def greeted(self, *, timeout: float) -> dict[str, Any]:
        """The room's `presence`, the page's sign that it is in; Refused with the close code otherwise."""
        try:
            self.presence = await self.expect(PRESENCE, timeout=timeout)
            return self.presence
        except CheckFailure as exc:
            # A refusal is an `error` then a close: report both, the close code first.
            if self.close_code is None:
                await self.wait_close(timeout=timeout)
            closed, error = self.close_code, self.last_error()
            await self.close()
            if closed is None:
                raise Refused(str(exc), reason="no_presence") from None
            code = error.get("code") if error else None
            detail = f" ({code}: {error.get('message', '')})" if error else ""
            raise Refused(
                f"refused with close code {closed}{detail}",
                reason=f"{closed} {code}" if code else str(closed),
                close_code=closed,
                code=code,
                # The instance began stopping while this client joined: join again, elsewhere, now.
                retryable=closed == CLOSE_SERVICE_RESTART,
            ) from None

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    # Sending.

    async def send(self, kind: str, data: dict[str, Any] | None = None) -> None:
        await self.send_message({"type": kind, "data": data if data is not None else {}})

    async def send_message(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def resume(self, since: int) -> None:
        """Ask for every event after `since` (what the page sends when it sees a seq gap)."""
        await self.send(RESUME, {"since": since})

    # Reading on demand (or from the background reader's inbox).

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        """The next message, chatter included; TimeoutError, or ConnectionClosed once the socket is closed."""
        if self._inbox is None:
            return self._keep(decode(await asyncio.wait_for(self.ws.recv(), timeout)))
        message = await asyncio.wait_for(self._inbox.get(), timeout)
        if message is _CLOSED:
            self._inbox.put_nowait(_CLOSED)
            if self._reader.done() and self._reader.exception():
                raise self._reader.exception()  # a frame the check refused
            closing = self.ws.protocol
            raise ConnectionClosed(closing.close_rcvd, closing.close_sent, closing.close_rcvd_then_sent)
        return message

    async def expect(
        self, kind: str, timeout: float = 5, *, skip: frozenset[str] | set[str] = CHATTER
    ) -> dict[str, Any]:
        """The next message of type `kind`, passing over chatter; anything else fails the check."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                message = await self.receive(max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise CheckFailure(f"no {kind} within {timeout:g} s") from None
            except ConnectionClosed:
                error = self.last_error()
                raise CheckFailure(
                    f"connection closed with {self.close_code} while waiting for {kind}"
                    + (f": {error.get('code', 'error')}: {error.get('message', '')}" if error else "")
                ) from None
            if message.get("type") == kind:
                return message
            if message.get("type") in set(skip) - {kind}:
                continue
            raise CheckFailure(f"expected {kind}, got {describe(message)}")

    receive_type = expect

    async def nothing(self, timeout: float = 0.5) -> bool:
        """Whether nothing but chatter arrives within `timeout`."""
        try:
            while True:
                if (await self.receive(timeout)).get("type") not in CHATTER:
                    return False
        except TimeoutError:
            return True

    async def wait_close(self, timeout: float = 5) -> int | None:
        """Read until the server closes; the close code it sent (1006 without one), None if still open."""
        with contextlib.suppress(TimeoutError):
            try:
                while True:
                    await self.receive(timeout)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else 1006
        return None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # Reading in the background or in a loop.

    def start_reading(self) -> None:
        """Read everything into `received` (and the inbox `receive` takes from) from now on."""
        self._inbox = asyncio.Queue()

        async def read() -> None:
            try:
                await self.run(self._inbox.put_nowait)
            finally:
                self._inbox.put_nowait(_CLOSED)

        self._reader = asyncio.create_task(read())

    async def run(self, on_message: Callable[[Any], None], *, raw: bool = False) -> int | None:
        """Hand every message to `on_message` (the frame as it came with `raw`) until the socket closes;
        the close code."""
        try:
            async for text in self.ws:
                on_message(text if raw else self._keep(decode(text)))
        except ConnectionClosed:
            pass
        return self.ws.close_code

    # What arrived.

    def types_received(self) -> list[str]:
        return [message.get("type", "?") for message in self.received]

    def last_error(self) -> dict[str, Any] | None:
        errors = [m for m in self.received if m.get("type") == ERROR]
        return (errors[-1].get("data") or {}) if errors else None

    def _keep(self, message: dict[str, Any]) -> dict[str, Any]:
        self.received.append(message)
        if self.checked:
            check_server_message(message)
        return message


def describe(message: dict[str, Any]) -> str:
    data = message.get("data") or {}
    if message.get("type") == ERROR:
        return f"error {data.get('code', '')}: {data.get('message', '')}"
    return str(message.get("type"))
