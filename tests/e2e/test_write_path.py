"""daphne's write path (realtime.daphne_server.WriteNowServer) on a real server: frames arrive whole and in
order, whether the kernel takes them at once or they wait in Twisted's buffer for a slow reader.

The server is `manage.py serve`'s daphne (realtime.daphne_server.Daphne) serving tests/e2e/frames_app.py,
which sends numbered frames on request. The client is a raw socket, so that it reads only when the
test says so and with a receive buffer as small as the test likes.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest
from django.conf import settings

from realtime.conf import realtime_settings
from tests.servers import LOG_DIR, ROOT, free_port

from .frames_app import frame

pytestmark = [pytest.mark.e2e]

# The largest message serve lets daphne send; eight of them are more than the kernel holds for one
# connection (at most 4 MB to send, and the test's small receive buffer), so at least one is cut in
# two: the kernel takes its head, daphne buffers its tail.
BIG = realtime_settings.TRANSPORT_MAX_BYTES
BIGS = 8
SMALL = 200
SERVE = (
    "import sys, django; django.setup(); "
    "from realtime.daphne_server import Daphne; Daphne().run(sys.argv[1:])"
)


@pytest.fixture(scope="module")
def port():
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"frames-{port}.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "inventory_site.settings.test",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "PYTHONUNBUFFERED": "1",
    }
    limit = str(realtime_settings.TRANSPORT_MAX_BYTES)  # as serve runs daphne
    argv = ["-b", "127.0.0.1", "-p", str(port), "--websocket-max-message-size", limit]
    argv += ["--websocket-max-frame-size", limit, "tests.e2e.frames_app:application"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, *argv],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, (
                    f"daphne did not listen:\n{log.read_text(errors='replace')}"
                )
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class RawWebSocket:
    """A WebSocket client on a plain blocking socket: it reads when it is told to."""

    def __init__(self, port: int, receive_buffer: int | None = None):
        self.sock = socket.socket()
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        self.pending = bytearray()
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            b"GET /frames HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        while b"\r\n\r\n" not in self.pending:
            self._fill()
        head, _, rest = bytes(self.pending).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        self.pending = bytearray(rest)

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.pending += chunk

    def _take(self, size: int) -> bytes:
        while len(self.pending) < size:
            self._fill()
        taken = bytes(self.pending[:size])
        del self.pending[:size]
        return taken

    def wait_for_data(self) -> None:
        while not self.pending:
            self._fill()

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        else:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def command(self, **command) -> None:
        self.send(0x1, json.dumps(command).encode())

    def close(self, code: int = 1000) -> None:
        self.send(0x8, struct.pack("!H", code))

    def receive(self) -> tuple[int, bytes]:
        """The next frame, as (opcode, payload); the server sends each message as one frame."""
        first, second = self._take(2)
        assert first & 0x80, "a fragmented message"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return first & 0x0F, self._take(length)

    def receive_frames(self, sizes: list[int], first: int) -> None:
        """Read one binary frame per size, numbered from `first`, and check every byte."""
        for number, size in enumerate(sizes, first):
            opcode, payload = self.receive()
            assert opcode == 0x2, (number, opcode, payload[:80])
            assert len(payload) == size, (number, len(payload), size)
            assert int.from_bytes(payload[:4], "big") == number, "frames out of order"
            assert payload == frame(number, size), f"frame {number} changed on the way"

    def stats(self) -> dict:
        opcode, payload = self.receive()
        assert opcode == 0x1, (opcode, payload[:80])
        return json.loads(payload)

    def until_closed(self) -> tuple[int, bytes]:
        """The close frame the server sends, then the end of the stream (nothing after it)."""
        opcode, payload = self.receive()
        assert opcode == 0x8, (opcode, payload[:80])
        rest = bytes(self.pending)
        try:
            while chunk := self.sock.recv(1 << 16):
                rest += chunk
        except ConnectionResetError:
            pass
        assert rest == b"", rest[:80]
        return struct.unpack("!H", payload[:2])[0], rest

    def shut(self) -> None:
        self.sock.close()


@pytest.fixture
def connect(port):
    opened = []

    def connect_(**options) -> RawWebSocket:
        opened.append(RawWebSocket(port, **options))
        return opened[-1]

    yield connect_
    for ws in opened:
        ws.shut()


def test_frames_the_kernel_can_take_go_out_whole_and_in_order_without_waiting_for_the_loop(connect):
    ws = connect()
    ws.command(stats=True)
    before = ws.stats()["registrations"]
    # 100 frames of 100 bytes fit in the smallest kernel send buffer (16 KB): none waits for the loop.
    ws.command(frames=[[100, 100]], stats=True)
    ws.receive_frames([100] * 100, first=1)
    assert ws.stats()["registrations"] == before
    ws.close()
    assert ws.until_closed()[0] == 1000


def test_a_slow_reader_gets_more_than_the_kernel_holds_whole_and_in_order(connect):
    ws = connect(receive_buffer=4096)
    ws.command(stats=True)
    before = ws.stats()["registrations"]
    ws.command(frames=[[SMALL, 10], [BIG, BIGS], [SMALL, 2000], [70_000, 3], [SMALL, 10]], stats=True)
    time.sleep(1)  # a reader that does not read: everything after the kernel's share waits in daphne
    ws.receive_frames([SMALL] * 10 + [BIG] * BIGS + [SMALL] * 2000 + [70_000] * 3 + [SMALL] * 10, first=1)
    # The frames waited: the connection asked the loop to say when its socket could take more.
    assert ws.stats()["registrations"] > before
    # Drained, a frame goes out at once again.
    ws.command(stats=True)
    after = ws.stats()["registrations"]
    ws.command(frames=[[SMALL, 5]], stats=True)
    ws.receive_frames([SMALL] * 5, first=2032)
    assert ws.stats()["registrations"] == after
    ws.close()
    assert ws.until_closed()[0] == 1000


def test_a_client_closing_while_frames_wait_in_daphne_still_gets_them_all_then_the_close(connect):
    ws = connect(receive_buffer=4096)
    ws.command(frames=[[BIG, BIGS], [SMALL, 500]])
    # Once the first frame has begun to arrive, all 508 frames are written before the server reads
    # the close: it answers, and closes the connection once they are sent, not before.
    ws.wait_for_data()
    ws.close()
    time.sleep(0.5)
    ws.receive_frames([BIG] * BIGS + [SMALL] * 500, first=1)
    assert ws.until_closed()[0] == 1000


def test_the_server_closing_after_buffered_frames_sends_them_all_before_its_close_frame(connect):
    ws = connect()
    ws.command(frames=[[BIG, BIGS], [SMALL, 500]], close=True)
    ws.receive_frames([BIG] * BIGS + [SMALL] * 500, first=1)
    opcode, payload = ws.receive()
    assert (opcode, struct.unpack("!H", payload[:2])[0]) == (0x8, 1000)
    ws.close()
