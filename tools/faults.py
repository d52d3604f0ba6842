"""Faults to inject into real services: a throwaway Redis server and a TCP proxy that can be cut.

The end-to-end fault tests (tests/faults.py) and the chaos run (tools/chaos) share them. The
proxy forwards to one target, or round-robin to several (a load balancer in front of the
server processes: a target that refuses the connection is skipped, so clients of a dead
instance reach the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_LOG_DIR = Path(tempfile.gettempdir()) / "inventory-faults"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server of our own on a free port: no persistence, stopped, started and paused at will."""

    def __init__(self, port: int | None = None, *, log_dir: Path | None = None):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not on PATH")
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._dir = tempfile.mkdtemp(prefix=f"redis-{self.port}-")
        log_dir = log_dir or DEFAULT_LOG_DIR
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10) -> None:
        """Start (or restart) on the same port; return once it answers PING."""
        if self.running:
            return
        # Wait until the previous process's port is really free (same port, same URL).
        wait_for(lambda: not redis_ping(self.port), timeout, f"port {self.port} to be free")
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self._dir,
                    # DEBUG SLEEP pauses the server (pause()); Redis 7 refuses DEBUG unless enabled.
                    *self._debug_args(),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        try:
            wait_for(lambda: self.process.poll() is None and redis_ping(self.port), timeout, "redis-server")
        except RuntimeError:
            self.stop()
            raise RuntimeError(
                f"redis-server did not start:\n{self.log.read_text(errors='replace')}"
            ) from None

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL): every client connection drops."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def pause(self, seconds: float) -> None:
        """Block the server for `seconds` (DEBUG SLEEP): connections stay open, nothing is answered."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=seconds + 10) as sock:
            sock.sendall(f"DEBUG SLEEP {seconds:.3f}\r\n".encode())
            answer = sock.recv(64)
        if not answer.startswith(b"+OK"):
            raise RuntimeError(f"DEBUG SLEEP refused: {answer!r}")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _debug_args() -> list[str]:
        version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        major = version.split("v=", 1)[-1].split(".", 1)[0]
        return ["--enable-debug-command", "local"] if major.isdigit() and int(major) >= 7 else []


class TcpProxy:
    """Forward 127.0.0.1:port to a target (or round-robin to several); `cut()` makes them unreachable,
    `restore()` undoes it.

    Cut means: the listener is closed (new connections are refused) and every forwarded
    connection is aborted (the client sees its connection reset), as when a server vanishes.
    With several targets, a new connection goes to the next one in turn; a target that refuses
    it is skipped (the client is refused only when every target refuses).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        port: int | None = None,
        *,
        more_targets: list[tuple[str, int]] = (),
    ):
        self.target = (target_host, target_port)
        self.targets = [self.target, *more_targets]
        self.port = port or free_port()
        self.connections_total = 0
        self.connections_by_target: dict[tuple[str, int], int] = dict.fromkeys(self.targets, 0)
        self._turn = itertools.cycle(range(len(self.targets)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"proxy-{self.port}", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task] = set()
        self._budget: int | None = None  # connections still allowed before the cut; None: no limit

    @property
    def listening(self) -> bool:
        return self._server is not None

    def start(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def restore(self) -> None:
        """Listen again on the same port, with no limit."""
        self._budget = None
        self._call(self._listen())

    def cut_after(self, connections: int) -> None:
        """Forward `connections` more new connections, then refuse new ones (a cut mid-request)."""
        if connections <= 0:
            self.cut()
            return
        self._budget = connections
        self._call(self._listen())

    def cut(self) -> None:
        """Close the listener and every forwarded connection."""
        self._call(self._cut())

    def close(self) -> None:
        if self._thread.is_alive():
            self.cut()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._forward, "127.0.0.1", self.port, reuse_address=True, backlog=1024
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        # Let the relays see their connections reset and finish.
        pending = [task for task in self._tasks if task is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def _forward(self, client_reader, client_writer) -> None:
        if self._server is None or self._budget == 0:  # accepted just as we were cut
            client_writer.transport.abort()
            return
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._relay(client_reader, client_writer)
        finally:
            self._tasks.discard(task)

    async def _open_upstream(self):
        """A connection to the next target in turn, skipping targets that refuse; None if all do."""
        first = next(self._turn)
        for offset in range(len(self.targets)):
            target = self.targets[(first + offset) % len(self.targets)]
            try:
                reader, writer = await asyncio.open_connection(*target)
            except OSError:
                continue
            self.connections_by_target[target] += 1
            return reader, writer
        return None

    async def _relay(self, client_reader, client_writer) -> None:
        if self._budget is not None:
            self._budget -= 1
            if self._budget == 0:  # the last one allowed: refuse every later connection
                self._server.close()
                self._server = None
        upstream = await self._open_upstream()
        if upstream is None:
            client_writer.transport.abort()
            return
        upstream_reader, upstream_writer = upstream
        self.connections_total += 1
        pair = {client_writer.transport, upstream_writer.transport}
        self._transports |= pair
        try:
            await asyncio.gather(
                self._pump(client_reader, upstream_writer), self._pump(upstream_reader, client_writer)
            )
        finally:
            for transport in pair:
                transport.abort()
            self._transports -= pair

    @staticmethod
    async def _pump(reader, writer) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()


def read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
