"""CPU per relayed WebSocket frame on daphne as `serve` runs it: Twisted's write path against WriteNowServer.

    .venv/bin/python tools/bench/relay_frames.py [--sockets 1000] [--rounds 20] [--size 500] [--repeat 5]
        [--strace]

Method: two server processes, both `realtime.daphne_server`'s daphne (the class `serve` runs, with
serve's frame limits) pinned with `taskset -c 0`, serving the tiny ASGI application below instead
of the product, so that nothing but daphne's relay is measured (no database, no channel layer):
- `twisted`: connections are Twisted's own tcp.Server (`listen_success` as daphne has it), so every
  frame is buffered, the connection registered for write events, written on the next loop pass and
  unregistered (the path before WriteNowServer);
- `write-now`: the shipped Server, whose connections are WriteNowServer.
This process, pinned to core 1, opens --sockets idle sockets to each server (websockets, uvloop)
and one control socket. A measurement asks one server for --rounds rounds: each round sends one
--size-byte text frame to every socket. `paced`: the loop runs one whole pass between rounds, the
way separate room events reach every local socket of a room, so each frame is written on its own;
`burst`: no pass between rounds, so Twisted writes a socket's frames of all rounds in one `send`
(its best case: a backlog or a gap fill) while WriteNowServer sends each at once. A measurement
lasts until every socket has received all its frames. CPU per frame = (the server's utime +
stime, from tools/sampler.py, during the measurement - its idle rate, measured for 2 s beforehand, x the
measurement's wall time) / (sockets x rounds). The two variants alternate, --repeat times each in
each mode; the median is printed. --strace then runs one more measurement of each under
`strace -f -c -e trace=epoll_ctl,sendto` and prints the calls per frame. CPU is read in clock ticks
(10 ms), so keep a measurement above ~10,000 frames. Results are approximate on a shared machine:
compare the two variants of one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.sampler import cpu_seconds  # noqa: E402

VARIANTS = ("twisted", "write-now")


# The server side: `python tools/bench/relay_frames.py serve VARIANT PORT` (started by the run below).

SINKS: list = []


async def application(scope, receive, send):
    """Sockets on /sink are relayed to; "ROUNDS SIZE PASSES" on /control relays, then answers "done"."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    sink = scope["path"] == "/sink"
    if sink:
        SINKS.append(send)
    try:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            if not sink:
                rounds, size, passes = map(int, event["text"].split())
                payload = "x" * size
                for _ in range(rounds):
                    for each in list(SINKS):
                        await each({"type": "websocket.send", "text": payload})
                    # Two yields are one whole loop pass: the I/O callbacks of the pass (Twisted's
                    # writes) run after this task's next step was queued by the first.
                    for _ in range(passes):
                        await asyncio.sleep(0)
                await send({"type": "websocket.send", "text": "done"})
    finally:
        if sink:
            SINKS.remove(send)


def serve(variant: str, port: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings.local")
    os.environ["DATABASE_URL"] = "sqlite://:memory:"
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from daphne.server import Server as DaphneServer

    from realtime.conf import realtime_settings
    from realtime.daphne_server import Daphne, Server

    class TwistedWriteServer(Server):
        def listen_success(self, port):
            DaphneServer.listen_success(self, port)

    class Cli(Daphne):
        server_class = TwistedWriteServer if variant == "twisted" else Server

    limit = str(realtime_settings.TRANSPORT_MAX_BYTES)
    argv = ["-b", "127.0.0.1", "-p", str(port), "--ping-interval", "30", "--ping-timeout", "30"]
    argv += ["--websocket_timeout", "-1", "--websocket-max-message-size", limit]
    argv += ["--websocket-max-frame-size", limit, "tools.bench.relay_frames:application"]
    Cli().run(argv)


# The measuring side.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Target:
    """One server process, its sinks and its control socket."""

    def __init__(self, variant: str):
        self.variant = variant
        self.port = free_port()
        log = Path(tempfile.gettempdir()) / f"relay-frames-{variant}-{self.port}.log"
        self.log = open(log, "wb")  # noqa: SIM115 (open while the server runs)
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, __file__, "serve", variant, str(self.port)],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.counts: list[int] = []
        self.arrived = asyncio.Event()
        self.expected = 0
        self.waiting = 0
        self.sinks: list = []
        self.readers: list = []
        self.control = None
        self.idle_rate = 0.0

    async def start(self, sockets: int) -> None:
        from websockets.asyncio.client import connect

        deadline = time.monotonic() + 30
        while True:
            try:
                self.control = await connect(f"ws://127.0.0.1:{self.port}/control", max_size=None)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"{self.variant} server did not start: see {self.log.name}") from None
                await asyncio.sleep(0.2)
        slots = asyncio.Semaphore(50)

        async def open_one():
            async with slots:
                return await connect(f"ws://127.0.0.1:{self.port}/sink", max_size=None, ping_interval=None)

        self.sinks = await asyncio.gather(*(open_one() for _ in range(sockets)))
        self.counts = [0] * sockets
        self.readers = [asyncio.create_task(self._read(i, ws)) for i, ws in enumerate(self.sinks)]
        await asyncio.sleep(1)
        before, started = cpu_seconds(self.process.pid), time.monotonic()
        await asyncio.sleep(2)
        self.idle_rate = (cpu_seconds(self.process.pid) - before) / (time.monotonic() - started)

    async def _read(self, index: int, ws) -> None:
        async for _ in ws:
            self.counts[index] += 1
            if self.counts[index] == self.expected:
                self.waiting -= 1
                if not self.waiting:
                    self.arrived.set()

    async def relay(self, rounds: int, size: int, passes: int = 2) -> tuple[float, float, int]:
        """(server CPU s less idle, wall s, frames delivered) for one measurement."""
        self.expected = self.counts[0] + rounds
        self.waiting = len(self.sinks)
        self.arrived.clear()
        before, started = cpu_seconds(self.process.pid), time.monotonic()
        await self.control.send(f"{rounds} {size} {passes}")
        assert await self.control.recv() == "done"
        await asyncio.wait_for(self.arrived.wait(), 120)
        wall = time.monotonic() - started
        cpu = cpu_seconds(self.process.pid) - before - self.idle_rate * wall
        return cpu, wall, rounds * len(self.sinks)

    async def stop(self) -> None:
        for task in self.readers:
            task.cancel()
        for ws in [*self.sinks, self.control]:
            if ws is not None:
                await ws.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


async def traced(target: Target, rounds: int, size: int, passes: int) -> dict[str, float]:
    """epoll_ctl and sendto calls per frame during one measurement, counted by strace."""
    output = Path(tempfile.gettempdir()) / f"relay-frames-strace-{target.variant}.txt"
    command = ["strace", "-f", "-c", "-e", "trace=epoll_ctl,sendto", "-o", str(output)]
    strace = subprocess.Popen([*command, "-p", str(target.process.pid)], stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    await asyncio.sleep(1)  # attached to every thread
    _, _, frames = await target.relay(rounds, size, passes)
    strace.send_signal(signal.SIGINT)
    await asyncio.to_thread(strace.wait, 10)
    calls = {"epoll_ctl": 0.0, "sendto": 0.0}
    for line in output.read_text().splitlines():
        parts = line.split()
        if parts and parts[-1] in calls:
            calls[parts[-1]] = round(int(parts[3]) / frames, 2)
    return calls


async def run(args) -> None:
    os.sched_setaffinity(0, {1})
    targets = [Target(variant) for variant in VARIANTS]
    modes = {"paced": 2, "burst": 0}  # yields between rounds: one loop pass, or none
    try:
        for target in targets:
            await target.start(args.sockets)
        for target in targets:  # a warm-up round each
            await target.relay(2, args.size)
        results = {(mode, target.variant): [] for mode in modes for target in targets}
        for _ in range(args.repeat):
            for mode, passes in modes.items():
                for target in targets:
                    cpu, wall, frames = await target.relay(args.rounds, args.size, passes)
                    results[mode, target.variant].append(cpu / frames * 1e6)
                    print(
                        f"{mode:>5} {target.variant:>9}: {frames} frames in {wall:.2f} s, "
                        f"{cpu / frames * 1e6:.1f} µs of server CPU per frame",
                        flush=True,
                    )
        summary: dict = {"sockets": args.sockets, "rounds": args.rounds, "size": args.size}
        summary["idle_cpu"] = {target.variant: round(target.idle_rate, 3) for target in targets}
        for (mode, variant), values in results.items():
            summary.setdefault(mode, {})[variant] = {
                "median_us_per_frame": round(statistics.median(values), 1),
                "runs": [round(value, 1) for value in values],
            }
        if args.strace:
            for mode, passes in modes.items():
                for target in targets:
                    calls = await traced(target, args.rounds, args.size, passes)
                    summary[mode][target.variant]["syscalls_per_frame"] = calls
        print(json.dumps(summary, indent=2))
    finally:
        for target in targets:
            await target.stop()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--strace", action="store_true", help="count epoll_ctl and sendto per frame")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
