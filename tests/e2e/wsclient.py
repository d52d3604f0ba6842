"""A real WebSocket client (the `websockets` library) for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from urllib.parse import quote

import websockets
from websockets.asyncio.client import connect

CHATTER = {"user_joined", "user_left", "presence"}


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
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

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
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else 1006

    async def close(self) -> None:
        await self.ws.close()


# Blocking HTTP calls: from async tests, run them with asyncio.to_thread.


def post_scan(server, code: str, token: str) -> int:
    """POST /api/inventory/save-scan into Alfa Romeo 10/2025; the status."""
    body = {"agency": "Alfa Romeo", "month": "10", "year": 2025, "scanData": {"code": code}}
    request = urllib.request.Request(
        server.http + "/api/inventory/save-scan",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def health_status(server) -> int:
    with urllib.request.urlopen(f"{server.http}/health", timeout=5) as response:
        return response.status
