"""A small keep-alive HTTP/1.1 client on asyncio streams: enough to POST JSON to one server.

The load test publishes over REST from inside the workers' event loops, where a blocking
client would stall every socket; this avoids adding an HTTP library for one request shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class HttpClient:
    """One persistent connection to the server at `base_url`, reopened when the server closes it."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0):
        parts = urlsplit(base_url)
        self.host = parts.hostname or "localhost"
        self.secure = parts.scheme == "https"
        self.port = parts.port or (443 if self.secure else 80)
        self.host_header = parts.netloc
        self.headers = headers or {}
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, payload: Any = None) -> Response:
        """Send one request; a connection the server closed while idle is reopened once."""
        body = json.dumps(payload).encode() if payload is not None else b""
        for attempt in (1, 2):
            reused = self._writer is not None
            try:
                return await asyncio.wait_for(self._exchange(method, path, body), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2 or not reused:
                    raise
            except BaseException:
                await self.close()
                raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    async def _exchange(self, method: str, path: str, body: bytes) -> Response:
        if self._writer is None:
            context = ssl.create_default_context() if self.secure else None
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, ssl=context)
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host_header}",
            "Accept: application/json",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        if body:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        return await self._read_response()

    async def _read_response(self) -> Response:
        reader = self._reader
        status_line = await reader.readuntil(b"\r\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ConnectionError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked()
        else:
            body = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, body)

    async def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await self._reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
