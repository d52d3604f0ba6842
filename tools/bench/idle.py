"""Hold ROOMS x CLIENTS idle sockets open on a server, for `tools/bench/run.py` to read its memory.

Creates the sockets' agencies, users and tokens through the ORM of the settings it runs with
(the same helper as ws_loadtest), opens every socket, waits for each one's `presence`, prints one
JSON line ({"open": N, "refused": N, "seconds": S}) and holds the sockets until a line (or EOF)
arrives on stdin; then closes them and removes its data.

    python tools/bench/idle.py --url http://127.0.0.1:5101 --rooms 20 --clients 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings.production")
    import django

    django.setup()
    from realtime.conf import realtime_settings
    from tools.loadtest import plan
    from tools.loadtest.accounts import accounts_create

    accounts = accounts_create(run_id=secrets.token_hex(3), rooms=args.rooms, clients=args.clients)
    try:
        ws_base = plan.ws_base_url(args.url, realtime_settings.WEBSOCKET_PATH)
        urls = [
            (plan.room_ws_url(ws_base, room.agency, room.month, room.year), token)
            for position in range(args.clients)
            for room in accounts.rooms
            for token in room.tokens[position : position + 1]
        ]
        _run(_hold(urls, args.concurrency, args.timeout))
    finally:
        from django.db import connection

        connection.close()
        accounts.remove()


def _run(coroutine):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def _hold(urls, concurrency: int, timeout: float) -> None:
    from tools.liveclient import LiveClient

    slots = asyncio.Semaphore(concurrency)
    clients = []
    readers = []
    refused = 0

    async def open_one(url: str, token: str) -> None:
        nonlocal refused
        async with slots:
            try:
                client = await LiveClient.open(
                    url, token, timeout=timeout, ping_interval=None, compression=None
                )
            except Exception:
                refused += 1
                return
            clients.append(client)
            readers.append(asyncio.create_task(client.run(lambda _frame: None, raw=True)))

    started = time.perf_counter()
    await asyncio.gather(*(open_one(url, token) for url, token in urls))
    seconds = time.perf_counter() - started
    print(json.dumps({"open": len(clients), "refused": refused, "seconds": round(seconds, 2)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


if __name__ == "__main__":
    main()
