"""An instance stopped with SIGTERM (a deploy) loses nothing and hangs on nothing.

As `manage.py serve` runs it, on daphne and on uvicorn: every open socket is closed with 1012 (its
client reconnects at once, elsewhere), new connections are refused, the writes in flight are
committed and answered, and the process exits 0 within REALTIME_SHUTDOWN_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
import uuid

import pytest
from channels.db import database_sync_to_async
from django.db import connections, transaction

from inventory.models import Inventory, Scan
from realtime.wire import CLOSE_SERVICE_RESTART
from tests.conftest import token_for
from tests.servers import running_server, start_server

from .wsclient import LiveClient, ahttp, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOM = {"agency": "Alfa Romeo", "month": "10", "year": 2025}
SHUTDOWN_TIMEOUT = 10


@pytest.fixture(params=["daphne", "uvicorn"])
def server(request, transactional_db):
    env = {"ASGI_SERVER": request.param, "REALTIME_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)}
    with running_server(env=env) as live:
        yield live


@pytest.fixture
def tokens(ana, luis):
    return {"ana": token_for(ana), "luis": token_for(luis)}


async def rest_scan(server, token, code, scan_id):
    body = {**ROOM, "scanData": {"code": code, "id": scan_id}}
    return await ahttp(server, "POST", "/api/inventory/save-scan", body, token, timeout=30)


async def scan_over(client: LiveClient, code: str) -> str:
    scan_id = str(uuid.uuid4())
    await client.send("scan_added", {**ROOM, "scanData": {"code": code, "id": scan_id}})
    return scan_id


def acknowledged(client: LiveClient, scan_id: str) -> bool:
    """Whether the server confirmed the scan to its sender (its `scan_added` came back)."""
    return any(m["type"] == "scan_added" and m["data"]["scanData"]["id"] == scan_id for m in client.received)


async def exit_status(server, timeout: float) -> int:
    return await asyncio.to_thread(server.process.wait, timeout)


def refuses_connections(server) -> bool:
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@database_sync_to_async
def stored(*scan_ids: str) -> dict[str, int]:
    """How many times each scan id is stored."""
    return {scan_id: Scan.objects.filter(uid=scan_id).count() for scan_id in scan_ids}


async def test_sigterm_tells_every_socket_to_reconnect_and_exits_0(server, tokens):
    users = ("ana", "luis", "ana")
    clients = [await LiveClient.open(room_url(server), tokens[user], background=True) for user in users]
    try:
        first = await scan_over(clients[0], "VIN-BEFORE")
        for client in clients:
            await client.expect("scan_added")
        # Written just before the signal: one over a socket, one over REST.
        last = await scan_over(clients[1], "VIN-LAST-SOCKET")
        rest_id = str(uuid.uuid4())
        rest = asyncio.create_task(rest_scan(server, tokens["ana"], "VIN-LAST-REST", rest_id))
        await asyncio.sleep(0.2)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)

        codes = [await client.wait_close(timeout=SHUTDOWN_TIMEOUT) for client in clients]
        assert codes == [CLOSE_SERVICE_RESTART] * len(clients), (codes, server.output())
        status = await exit_status(server, SHUTDOWN_TIMEOUT + 5)
        took = time.monotonic() - signalled
        assert status == 0, server.output()
        assert took < SHUTDOWN_TIMEOUT, f"exited after {took:.1f} s"

        answer, body = await rest
        assert answer == 201, (answer, body)
        counts = await stored(first, rest_id, last)
        assert counts[first] == counts[rest_id] == 1, counts
        if acknowledged(clients[1], last):  # confirmed to its sender, so it must be stored
            assert counts[last] == 1, counts
        assert counts[last] <= 1, counts
        print(
            f"SHUTDOWN sockets=1012x{len(clients)} exit={status} took_s={took:.2f} "
            f"socket_write_stored={counts[last]}"
        )
    finally:
        for client in clients:
            await client.close()


async def test_a_socket_told_to_reconnect_resends_its_scan_and_it_is_stored_once(server, tokens):
    """The client's side of 1012: rejoin another instance with ?since, resend what is unconfirmed."""
    other = start_server()
    client = await LiveClient.open(room_url(server), tokens["ana"], background=True)
    try:
        scan_id = await scan_over(client, "VIN-MOVED")
        server.process.send_signal(signal.SIGTERM)
        assert await client.wait_close(timeout=SHUTDOWN_TIMEOUT) == CLOSE_SERVICE_RESTART
        # Reconnect now (no backoff) to the instance still running, and send the scan again.
        moved = await LiveClient.open(room_url(other), tokens["ana"], background=True, since=0)
        try:
            await moved.send("scan_added", {**ROOM, "scanData": {"code": "VIN-MOVED", "id": scan_id}})
            seen = await moved.expect("scan_added")
            assert seen["data"]["scanData"]["id"] == scan_id
        finally:
            await moved.close()
        assert await exit_status(server, SHUTDOWN_TIMEOUT + 5) == 0, server.output()
        assert (await stored(scan_id))[scan_id] == 1
    finally:
        await client.close()
        other.stop()


def hold_inventory_lock(held: threading.Event, release: threading.Event) -> None:
    """Hold the room's inventory row locked (SELECT ... FOR UPDATE) until `release`: writes wait."""
    try:
        with transaction.atomic():
            Inventory.objects.select_for_update().get(agency__name=ROOM["agency"], month=10, year=2025)
            held.set()
            release.wait(30)
    finally:
        connections.close_all()


def partial_then_whole_request(server, held: threading.Event, go_on: threading.Event) -> bytes:
    """Send a request's line and part of its headers, wait, then the rest; the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held.set()
        go_on.wait(10)
        sock.sendall(b"Accept: application/json\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def idle_keep_alive(server, served: threading.Event) -> bytes:
    """Make one request on a keep-alive connection, then wait; what comes next (b"": closed)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        served.set()
        return sock.recv(65536)


async def test_daphne_answers_a_request_still_arriving_and_closes_idle_connections(transactional_db):
    """On daphne: a request whose headers are still arriving when the signal comes is answered, and
    a keep-alive connection waiting for its next request is closed, not left to the reactor's stop.
    (uvicorn closes a connection whose request has not fully arrived: its client sends it again.)"""
    server = start_server(env={"REALTIME_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)})
    held, go_on, served = threading.Event(), threading.Event(), threading.Event()
    try:
        arriving = asyncio.create_task(asyncio.to_thread(partial_then_whole_request, server, held, go_on))
        idle = asyncio.create_task(asyncio.to_thread(idle_keep_alive, server, served))
        assert await asyncio.to_thread(held.wait, 10) and await asyncio.to_thread(served.wait, 10)
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(idle, 5) == b"", "the idle connection was not closed"
        assert server.process.poll() is None, "exited with a request still arriving"
        go_on.set()
        answer = await arriving
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert await exit_status(server, SHUTDOWN_TIMEOUT) == 0, server.output()
    finally:
        go_on.set()
        server.stop()


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_a_health_check_in_flight_is_answered_before_the_instance_exits(
    own_redis, transactional_db, kind
):
    """Redis paused: /health's channel-layer check waits out its 2 s (a worker thread's async_to_sync
    on the server's loop); the signal comes meanwhile, the check is answered, then the process exits."""
    server = start_server(env={"ASGI_SERVER": kind, "REDIS_URL": own_redis.url})
    try:
        own_redis.process.send_signal(signal.SIGSTOP)  # connections are accepted, nothing answers
        health = asyncio.create_task(ahttp(server, "GET", "/health", timeout=20))
        await asyncio.sleep(0.5)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status, body = await health
        assert (status, body["database"], body["channelLayer"]) == (200, "ok", "down"), (status, body)
        assert await exit_status(server, SHUTDOWN_TIMEOUT + 5) == 0, server.output()
        assert time.monotonic() - signalled < SHUTDOWN_TIMEOUT
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
        server.stop()


@pytest.mark.postgres
async def test_sigterm_waits_for_the_writes_in_flight_then_exits_0(require_postgres, server, tokens):
    """Writes held by a lock when the signal comes: the instance stops listening, tells its sockets,
    and exits only once they are committed and answered (their post-commit publish used to hang)."""
    users = ("ana", "luis")
    clients = [await LiveClient.open(room_url(server), tokens[user], background=True) for user in users]
    held, release = threading.Event(), threading.Event()
    holder = None
    try:
        await scan_over(clients[0], "VIN-OPENS-THE-INVENTORY")
        await clients[0].expect("scan_added")
        holder = asyncio.create_task(asyncio.to_thread(hold_inventory_lock, held, release))
        assert await asyncio.to_thread(held.wait, 10)
        rest_id = str(uuid.uuid4())
        rest = asyncio.create_task(rest_scan(server, tokens["luis"], "VIN-HELD-REST", rest_id))
        socket_id = await scan_over(clients[0], "VIN-HELD-SOCKET")
        await asyncio.sleep(0.5)  # both writes are now waiting for the lock inside the server
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)

        codes = [await client.wait_close(timeout=5) for client in clients]
        assert codes == [CLOSE_SERVICE_RESTART] * len(clients), (codes, server.output())
        assert await asyncio.to_thread(refuses_connections, server), "still accepting connections"
        assert server.process.poll() is None, "exited with writes in flight"
        assert not rest.done(), "the REST write was answered while it waited for the lock"

        release.set()
        answer, body = await rest
        assert answer == 201, (answer, body)
        status = await exit_status(server, SHUTDOWN_TIMEOUT)
        took = time.monotonic() - signalled
        assert status == 0, server.output()
        assert took < SHUTDOWN_TIMEOUT, f"exited after {took:.1f} s"
        # Both committed: the socket's, though its confirmation could not reach the closed socket,
        # is stored once (its client resends it with the same id, and it is not stored twice).
        assert await stored(rest_id, socket_id) == {rest_id: 1, socket_id: 1}
        print(f"SHUTDOWN held-writes exit={status} took_s={took:.2f}")
    finally:
        release.set()
        if holder is not None:
            await holder
        for client in clients:
            await client.close()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_a_write_still_held_at_the_timeout_is_abandoned_unanswered_and_the_process_exits_1(
    require_postgres, transactional_db, tokens, kind
):
    """The worst case: a write held past REALTIME_SHUTDOWN_TIMEOUT. The process does not hang on it:
    the write is answered 503 (nothing confirmed), the process exits 1 shortly after, and the write,
    never committed, is rolled back."""
    server = start_server(env={"ASGI_SERVER": kind, "REALTIME_SHUTDOWN_TIMEOUT": "1"})
    held, release = threading.Event(), threading.Event()
    holder = None
    try:
        status, body = await rest_scan(server, tokens["ana"], "VIN-OPENS-THE-INVENTORY", str(uuid.uuid4()))
        assert status == 201, (status, body)
        holder = asyncio.create_task(asyncio.to_thread(hold_inventory_lock, held, release))
        assert await asyncio.to_thread(held.wait, 10)
        rest_id = str(uuid.uuid4())
        rest = asyncio.create_task(rest_scan(server, tokens["luis"], "VIN-ABANDONED", rest_id))
        await asyncio.sleep(0.5)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status = await exit_status(server, 15)
        took = time.monotonic() - signalled
        assert status == 1, server.output()
        assert took < 1 + 5 + 3, f"exited after {took:.1f} s"  # the timeout, then at most 5 s more
        said = server.output()  # the log says what was given up on
        assert "SHUTDOWN_TIMEOUT" in said or "timeout graceful shutdown exceeded" in said, said
        answer, body = await rest
        assert (answer, body["code"]) == (503, "unavailable"), (answer, body)
        assert body["detail"].startswith("El servidor se reinició"), body
        release.set()
        await holder
        holder = None
        assert await stored(rest_id) == {rest_id: 0}
        print(f"SHUTDOWN abandoned-write exit={status} took_s={took:.2f}")
    finally:
        release.set()
        if holder is not None:
            await holder
        server.stop()
