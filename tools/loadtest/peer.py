"""A WebSocket connection for step-by-step checks: what it received, in order, and waiting for a type."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

# Presence traffic that may arrive between any two messages a check waits for.
CHATTER = frozenset({"user_joined", "user_left", "presence"})
_CLOSED = {"type": "__closed__"}


class CheckFailure(Exception):
    """A check failed; the message says why, for the operator."""


class Peer:
    """One socket; a background reader keeps everything it receives."""

    def __init__(self, ws: ClientConnection, url: str):
        self.ws = ws
        self.url = url
        self.received: list[dict[str, Any]] = []
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str, *, timeout: float) -> Peer:
        """Connect and wait for `presence`; CheckFailure says why the server or network refused."""
        try:
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Token {token}"},
                max_size=2**20,
                open_timeout=timeout,
                close_timeout=2,
                proxy=None,
            )
        except InvalidStatus as exc:
            raise CheckFailure(f"handshake refused with HTTP {exc.response.status_code} ({url})") from None
        except TimeoutError:
            raise CheckFailure(f"no handshake within {timeout:g} s ({url})") from None
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise CheckFailure(f"cannot connect to {url}: {exc}") from None
        peer = cls(ws, url)
        try:
            await peer.expect("presence", timeout=timeout)
        except CheckFailure:
            # A refusal is an `error` then a close: report both, the close code first.
            if await peer.closed(timeout=timeout) and peer.close_code is not None:
                reason = peer._error_text()
                await peer.close()
                raise CheckFailure(
                    f"refused with close code {peer.close_code}" + (f" ({reason})" if reason else "")
                ) from None
            await peer.close()
            raise
        return peer

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def expect(self, kind: str, *, timeout: float, skip: frozenset[str] = CHATTER) -> dict[str, Any]:
        """The next message of type `kind`, passing over chatter; anything else fails the check."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                message = await asyncio.wait_for(self._inbox.get(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise CheckFailure(f"no {kind} within {timeout:g} s") from None
            if message is _CLOSED:
                self._inbox.put_nowait(_CLOSED)
                reason = self._error_text()
                raise CheckFailure(
                    f"connection closed with {self.close_code} while waiting for {kind}"
                    + (f": {reason}" if reason else "")
                )
            if message.get("type") == kind:
                return message
            if message.get("type") in skip - {kind}:
                continue
            raise CheckFailure(f"expected {kind}, got {_describe(message)}")

    async def closed(self, *, timeout: float) -> bool:
        """Whether the server closed the socket within `timeout`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self._reader.done()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    def types_received(self) -> list[str]:
        return [message.get("type", "?") for message in self.received]

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                try:
                    message = json.loads(text)
                except ValueError:
                    message = {"type": "__not_json__", "data": {"text": str(text)[:80]}}
                if not isinstance(message, dict):
                    message = {"type": "__not_an_object__"}
                self.received.append(message)
                self._inbox.put_nowait(message)
        except ConnectionClosed:
            pass
        finally:
            self._inbox.put_nowait(_CLOSED)

    def _error_text(self) -> str:
        errors = [m for m in self.received if m.get("type") == "error"]
        if not errors:
            return ""
        data = errors[-1].get("data") or {}
        return f"{data.get('code', 'error')}: {data.get('message', '')}"


def _describe(message: dict[str, Any]) -> str:
    data = message.get("data") or {}
    if message.get("type") == "error":
        return f"error {data.get('code', '')}: {data.get('message', '')}"
    return str(message.get("type"))
