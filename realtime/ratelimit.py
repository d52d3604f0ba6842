"""WebSocket rate limits: per user and per calendar minute, shared by all of a user's connections.

- Messages: N a minute per message type, plus one `invalid` budget for frames that name no
  known type (not JSON, not an object, unknown type), so that every frame counts.
- Connects: N connection attempts a minute.

With Redis, counted there by the asyncio client (INCR + EXPIRE in one round trip, no thread hop),
so every connection and instance of a user shares one budget. Without it, in Django's local
cache, for the one process there is. Windows are keys that expire on their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils.translation import gettext as _

from . import clock, protocol
from .conf import realtime_settings
from .redis_client import get_redis, key, redis_enabled
from .refusals import Refusal

logger = logging.getLogger("realtime.ratelimit")
WINDOW_SECONDS = 60
# The budget of frames that are not a message of a known type.
INVALID = "invalid"
CONNECT = "connect"
# A client that sends this many times its budget of a type in one window is disconnected.
FLOOD_FACTOR = 10


@dataclass(frozen=True)
class Count:
    """One counted event: how many of its kind this window, against which limit (0: none)."""

    count: int
    limit: int
    retry_after: int = 0  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.limit <= 0 or self.count <= self.limit

    @property
    def flooding(self) -> bool:
        """Past ten times the limit in one window: a client that ignores its refusals."""
        return self.limit > 0 and self.count > FLOOD_FACTOR * self.limit


async def _count(user_id, bucket: str, limit: int) -> Count:
    if limit <= 0:
        return Count(0, 0)
    now = clock.now()
    window = int(now // WINDOW_SECONDS)
    retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    name = f"ws-rate:{user_id}:{bucket}:{window}"
    try:
        if redis_enabled():
            window_key = key(name)
            async with get_redis().pipeline(transaction=False) as pipe:
                count, _ = await pipe.incr(window_key).expire(window_key, 2 * WINDOW_SECONDS).execute()
            return Count(count, limit, retry_after)
        return Count(await sync_to_async(_count_locally)(name), limit, retry_after)
    except Exception as exc:  # the store is down: do not punish the user for it
        logger.warning("Rate limit store unavailable: %r", exc)
        return Count(0, limit)


def _count_locally(name: str) -> int:
    # The cache's own add and incr, each atomic; its async aincr is a get then a set, and
    # concurrent connects would overwrite each other's counts.
    if cache.add(name, 1, timeout=2 * WINDOW_SECONDS):
        return 1
    try:
        return cache.incr(name)
    except ValueError:  # the window expired between add and incr
        cache.set(name, 1, timeout=2 * WINDOW_SECONDS)
        return 1


async def count_message(user_id, bucket: str) -> Count:
    """Count one frame: of a message type, or of the `invalid` budget."""
    return await _count(user_id, bucket, realtime_settings.RATE_LIMIT_MAX_MESSAGES)


async def count_connect(user_id) -> Count:
    """Count one connection attempt of a user."""
    return await _count(user_id, CONNECT, realtime_settings.CONNECT_RATE_PER_USER)


async def connect_refusal(user_id) -> Refusal | None:
    """Count one connection attempt; the refusal when the user is over the limit this minute."""
    attempts = await count_connect(user_id)
    if attempts.allowed:
        return None
    return Refusal(
        protocol.CLOSE_TOO_MANY,
        _("Demasiadas conexiones seguidas: máximo %(max)s por minuto. Reintenta en %(seconds)s s.")
        % {"max": attempts.limit, "seconds": attempts.retry_after},
        "connect_rate_limited",
        {"retryAfter": attempts.retry_after},
    )


async def allow(user_id, kind: str) -> bool:
    """Count one message; False when the user is over the limit for this type this minute."""
    return (await count_message(user_id, kind)).allowed
