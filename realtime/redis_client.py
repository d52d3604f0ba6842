"""One asyncio Redis client per event loop, for presence and metrics."""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def redis_enabled() -> bool:
    return bool(settings.REDIS_URL)


def get_redis() -> aioredis.Redis:
    """The Redis client for the running loop (clients cannot be shared between loops)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # A blocking pool: when 1,000 sockets close at once, their presence calls wait their turn
        # for a connection (at most 5 s) instead of failing with MaxConnectionsError.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=100,
            timeout=5,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
            retry_on_timeout=True,
        )
        client = aioredis.Redis(connection_pool=pool)
        _clients[loop] = client
    return client


def key(*parts) -> str:
    return ":".join([settings.REDIS_PREFIX, *map(str, parts)])
