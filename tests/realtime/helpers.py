"""Connect to the real ASGI WebSocket application in-process with channels' WebsocketCommunicator.

Every frame the server sends a test is checked against protocol v1's declaration (realtime.wire).
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from urllib.parse import quote

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from realtime.routing import websocket_application
from realtime.wire import PRESENCE_CHATTER, check_server_message

TIMEOUT = 3


@database_sync_to_async
def token_of(user) -> str:
    from tests.conftest import token_for

    return token_for(user)


def room_path(agency="Alfa Romeo", month="10", year="2025", query="") -> str:
    path = f"/ws/inventory/{quote(agency)}/{month}/{year}"
    return f"{path}?{query}" if query else path


class Client:
    """A communicator with the helpers a test needs."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.ws = communicator

    async def send(self, kind: str, data=None, **extra) -> None:
        message = {"type": kind, **extra}
        if data is not None:
            message["data"] = data
        await self.ws.send_json_to(message)

    async def receive(self, timeout: float = TIMEOUT) -> dict:
        return check_server_message(await self.ws.receive_json_from(timeout=timeout))

    async def receive_type(self, kind: str, timeout: float = TIMEOUT) -> dict:
        """Skip presence chatter (user_joined, user_left, presence) until a message of `kind`."""
        while True:
            message = await self.receive(timeout)
            if message["type"] == kind:
                return message
            if message["type"] not in PRESENCE_CHATTER:
                raise AssertionError(f"expected {kind}, got {message}")

    async def receive_types(self, count: int, timeout: float = TIMEOUT) -> list[dict]:
        """The next `count` messages other than presence chatter, in the order they arrived."""
        messages = []
        while len(messages) < count:
            message = await self.receive(timeout)
            if message["type"] not in PRESENCE_CHATTER:
                messages.append(message)
        return messages

    async def nothing(self, timeout: float = 0.3, ignore=PRESENCE_CHATTER - {"user_left"}) -> bool:
        """True when nothing but `ignore`d chatter arrives within `timeout`."""
        while not await self.ws.receive_nothing(timeout=timeout):
            message = await self.receive()
            if message["type"] not in ignore:
                return False
        return True

    async def closed_with(self, timeout: float = TIMEOUT) -> int:
        """Drain messages until the server closes; return the close code.

        Then hand the consumer the `websocket.disconnect` a real server sends after a close, so it
        finishes, as it would in daphne, instead of being left pending with a database connection.
        """
        while True:
            output = await self.ws.receive_output(timeout)
            if output["type"] == "websocket.close":
                code = output.get("code", 1000)
                await self.ws.disconnect(code)
                return code
            check_server_message(json.loads(output["text"]))


async def connect_raw(path, *, token=None, headers=()):
    headers = list(headers)
    if token:
        headers.append((b"authorization", f"Token {token}".encode()))
    communicator = WebsocketCommunicator(websocket_application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    return Client(communicator), connected


@asynccontextmanager
async def joined(user, path=None, *, drain=True, query=""):
    """A client of `user` that joined the room and read its `presence` greeting."""
    client, connected = await connect_raw(path or room_path(query=query), token=await token_of(user))
    assert connected
    try:
        if drain:
            # The server answers the join with `presence` at once; its `user_joined` broadcast
            # follows through the channel layer, and receive_type() skips it.
            first = await client.receive()
            assert first["type"] == "presence", first
        yield client
    finally:
        await client.ws.disconnect()
