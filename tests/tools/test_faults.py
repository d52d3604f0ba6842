"""The fault tools shared by the end-to-end tests and the chaos run (tools/faults.py)."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from tools.faults import RedisServer, TcpProxy, redis_ping

from ..servers import LOG_DIR


def test_the_round_robin_proxy_takes_turns_and_skips_a_target_that_refuses():
    def answer(name: bytes):
        async def handle(reader, writer):
            writer.write(name)
            await writer.drain()
            writer.close()

        return handle

    async def ask(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await reader.read()
        finally:
            writer.close()

    async def scenario():
        servers = [await asyncio.start_server(answer(name), "127.0.0.1", 0) for name in (b"one", b"two")]
        ports = [server.sockets[0].getsockname()[1] for server in servers]
        with TcpProxy("127.0.0.1", ports[0], more_targets=[("127.0.0.1", ports[1])]) as proxy:
            both = [await ask(proxy.port) for _ in range(4)]
            servers[1].close()
            await servers[1].wait_closed()
            one = [await ask(proxy.port) for _ in range(3)]
        servers[0].close()
        return both, one

    both, one = asyncio.run(scenario())
    assert both == [b"one", b"two", b"one", b"two"]
    # The second target refuses now: every connection goes to the first.
    assert one == [b"one"] * 3


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_paused_redis_answers_nothing_until_it_wakes():
    with RedisServer(log_dir=LOG_DIR) as redis:
        began = time.monotonic()
        redis.pause(0.5)
        assert time.monotonic() - began >= 0.5
        assert redis_ping(redis.port)
