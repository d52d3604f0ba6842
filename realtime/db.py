"""The live room's database hops: side by side on PostgreSQL, one at a time on SQLite.

Channels runs every `database_sync_to_async` call on one thread, so a thousand sockets joining
after a deploy queue their token lookups, room opens and state reads behind each other, and every
room's writes wait for every other room's round trips. On PostgreSQL these hops run on the
event loop's thread pool instead: a room's order does not depend on that thread (each socket
handles its messages one at a time, and `seq` is taken under the inventory's row lock). SQLite
allows one writer at a time, so there they stay on the one thread.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from channels.db import DatabaseSyncToAsync
from django.conf import settings

# One pool of threads for the process (not the event loop's default executor): each thread keeps
# its Django connection between hops, as the one ORM thread does, and hands it back to the
# connection pool when it is closed, not when a short-lived thread ends.
HOP_THREADS = 8
_executor = ThreadPoolExecutor(max_workers=HOP_THREADS, thread_name_prefix="db-hop")


def parallel() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def hop(func):
    """`func` as a coroutine function run in a thread, closing stale connections around it."""
    side_by_side = DatabaseSyncToAsync(func, thread_sensitive=False, executor=_executor)
    one_at_a_time = DatabaseSyncToAsync(func, thread_sensitive=True)

    async def call(*args, **kwargs):
        return await (side_by_side if parallel() else one_at_a_time)(*args, **kwargs)

    call.func = func
    call.__name__ = call.__qualname__ = getattr(func, "__name__", "hop")
    call.__doc__ = func.__doc__
    return call
