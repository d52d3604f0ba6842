"""A real WebSocket client (the `websockets` library) for end-to-end tests.

Every frame the server sends is checked against protocol v1's declaration (realtime.wire).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from urllib.parse import quote

import websockets
from websockets.asyncio.client import connect

from realtime.wire import PRESENCE_CHATTER as CHATTER
from realtime.wire import check_server_message


def room_url(server, agency="Alfa Romeo", month="10", year="2025", query="") -> str:
    url = server.ws(f"/ws/inventory/{quote(agency)}/{month}/{year}")
    return f"{url}?{query}" if query else url


class LiveClient:
    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def open(cls, url: str, token: str | None = None, greet: bool = True) -> LiveClient:
        headers = {"Authorization": f"Token {token}"} if token else {}
        client = cls(await connect(url, additional_headers=headers, open_timeout=10))
        if greet:
            first = await client.receive()
            assert first["type"] == "presence", first
        return client

    async def send(self, kind: str, data=None) -> None:
        await self.ws.send(json.dumps({"type": kind, "data": data if data is not None else {}}))

    async def receive(self, timeout: float = 5) -> dict:
        return check_server_message(json.loads(await asyncio.wait_for(self.ws.recv(), timeout)))

    async def receive_type(self, kind: str, timeout: float = 5) -> dict:
        while True:
            message = await self.receive(timeout)
            if message["type"] == kind:
                return message
            assert message["type"] in CHATTER, f"expected {kind}, got {message}"

    async def nothing(self, timeout: float = 0.5) -> bool:
        try:
            while True:
                message = await self.receive(timeout)
                if message["type"] not in CHATTER:
                    return False
        except TimeoutError:
            return True

    async def close_code(self, timeout: float = 5) -> int:
        """Read until the server closes; the close code it sent."""
        try:
            while True:
                check_server_message(json.loads(await asyncio.wait_for(self.ws.recv(), timeout)))
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else 1006

    async def close(self) -> None:
        await self.ws.close()


# Blocking HTTP calls: from async tests, use `ahttp` (or asyncio.to_thread).


def http(server, method, path, body=None, token=None, headers=None, timeout=15.0):
    """Call the server; (status, JSON or text), or (None, why) when it does not answer."""
    request = urllib.request.Request(
        server.http + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Token {token}"} if token else {}),
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (OSError, TimeoutError) as error:  # refused, reset or timed out: no answer
        return None, repr(error)
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


async def ahttp(*args, **kwargs):
    return await asyncio.to_thread(http, *args, **kwargs)


def post_scan(server, code: str, token: str) -> int:
    """POST /api/inventory/save-scan into Alfa Romeo 10/2025; the status."""
    body = {"agency": "Alfa Romeo", "month": "10", "year": 2025, "scanData": {"code": code}}
    return http(server, "POST", "/api/inventory/save-scan", body, token, timeout=10)[0]


def health_status(server) -> int:
    return http(server, "GET", "/health", timeout=5)[0]
