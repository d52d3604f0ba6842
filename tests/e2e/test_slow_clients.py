"""Slow clients are dropped: a request whose headers are not complete within HTTP_HEADER_TIMEOUT is
closed (slowloris), while normal requests and open sockets go on."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import pytest
from channels.db import database_sync_to_async

from tests.conftest import token_for
from tests.servers import running_server

from .wsclient import LiveClient, ahttp, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEADER_TIMEOUT = 2
# How long the test keeps trickling headers before it gives up on the server closing them.
GIVE_UP = 20


@pytest.fixture(params=["daphne", "uvicorn"])
def server(request, transactional_db):
    env = {"HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "ASGI_SERVER": request.param}
    with running_server(env=env) as live:
        yield live


async def slow_client(port: int) -> tuple[float | None, bytes]:
    """Send a request line, then one header line every 0.5 s; when the server closed it, and what it said."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    answer = b""
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await writer.drain()
        while time.monotonic() - started < GIVE_UP:
            try:
                chunk = await asyncio.wait_for(reader.read(1024), timeout=0.5)
            except TimeoutError:
                writer.write(b"X-Slow: yes\r\n")
                try:
                    await writer.drain()
                except ConnectionError:
                    return time.monotonic() - started, answer
                continue
            if not chunk:
                return time.monotonic() - started, answer
            answer += chunk
        return None, answer
    except ConnectionError:
        return time.monotonic() - started, answer
    finally:
        writer.close()


async def test_slow_headers_are_closed_with_408_while_others_are_served(server, ana):
    token = await database_sync_to_async(token_for)(ana)
    watcher = await LiveClient.open(room_url(server), token)
    try:
        slow = [asyncio.create_task(slow_client(server.port)) for _ in range(50)]
        await asyncio.sleep(0.5)
        # While they trickle, the server answers everyone else.
        status, body = await ahttp(server, "GET", "/health", timeout=10)
        assert status == 200 and body["status"] == "ok"
        other = await LiveClient.open(room_url(server), token)
        await other.close()
        results = await asyncio.gather(*slow)

        closed = [after for after, _ in results if after is not None]
        assert len(closed) == 50, f"{50 - len(closed)} slow connections still open after {GIVE_UP} s"
        assert all(answer.startswith(b"HTTP/1.1 408 ") for _, answer in results), results[0][1]
        # A socket open longer than the header timeout is a finished request: it stays open.
        await watcher.send("ping", {"timestamp": "still-here"})
        assert (await watcher.receive_type("pong"))["data"]["timestamp"] == "still-here"
    finally:
        await watcher.close()
    print(f"50 slow clients closed after {min(closed):.1f}-{max(closed):.1f} s (timeout {HEADER_TIMEOUT} s)")


async def test_an_idle_keep_alive_connection_is_closed_without_an_answer(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
        )
        await reader.readexactly(length)
        # Nothing more is sent: the server closes the connection, and says nothing.
        assert await asyncio.wait_for(reader.read(), timeout=GIVE_UP) == b""
    finally:
        writer.close()


def test_deeply_nested_json_is_a_400_on_a_real_server(server):
    request = urllib.request.Request(
        server.http + "/api/auth/token/",
        data=("[" * 100_000 + "]" * 100_000).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400 and refused.value.headers["Content-Type"] == "application/json"
    assert "Traceback" not in server.output()
