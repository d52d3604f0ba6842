"""An ASGI application for tests/e2e/test_write_path.py: sends the WebSocket frames a client asks for.

A client sends JSON commands as text frames:
  {"frames": [[size, count], ...]}  binary frames, numbered from 1 on this socket, in that order
  {"stats": true}                   then a text frame {"registrations": n}: how often a connection of
                                    this process has registered for write events (asked the event loop
                                    to say when its socket can take more) since the process started
  {"close": true}                   then a close frame, code 1000
Each frame is its 4-byte number followed by a pattern derived from it (`frame`), so a reader can
check every byte. Any other HTTP request is answered 200, so a test can wait for the server.
"""

from __future__ import annotations

import hashlib
import json

from twisted.internet import reactor

registrations = 0
_add_writer = reactor.addWriter


def _counting_add_writer(writer):
    global registrations
    if writer not in reactor.getWriters():
        registrations += 1
    _add_writer(writer)


reactor.addWriter = _counting_add_writer


def frame(number: int, size: int) -> bytes:
    """Frame `number` of `size` bytes (at least 4): the number, then its digest repeated."""
    pattern = hashlib.sha256(number.to_bytes(4, "big")).digest()
    body = pattern * ((size - 4) // len(pattern) + 1)
    return number.to_bytes(4, "big") + body[: size - 4]


async def application(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"ok\n"})
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    number = 0
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        command = json.loads(event["text"])
        for size, count in command.get("frames", []):
            for _ in range(count):
                number += 1
                await send({"type": "websocket.send", "bytes": frame(number, size)})
        if command.get("stats"):
            await send({"type": "websocket.send", "text": json.dumps({"registrations": registrations})})
        if command.get("close"):
            await send({"type": "websocket.close", "code": 1000})
