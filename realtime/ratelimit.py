"""WebSocket message rate limit: N messages per minute, per user, per message type.

With Redis, counted there by the asyncio client (INCR + EXPIRE in one round trip, no thread hop),
so every connection and instance of a user shares one budget. Without it, in Django's local
cache, for the one process there is. Windows are keys that expire on their own.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

from .conf import realtime_settings
from .redis_client import get_redis, key, redis_enabled

logger = logging.getLogger("realtime.ratelimit")
WINDOW_SECONDS = 60


async def allow(user_id, kind: str) -> bool:
    """Count one message; False when the user is over the limit for this type this minute."""
    limit = realtime_settings.RATE_LIMIT_MAX_MESSAGES
    if limit <= 0:
        return True
    window = int(time.time() // WINDOW_SECONDS)
    name = f"ws-rate:{user_id}:{kind}:{window}"
    try:
        if redis_enabled():
            window_key = key(name)
            async with get_redis().pipeline(transaction=False) as pipe:
                count, _ = await pipe.incr(window_key).expire(window_key, 2 * WINDOW_SECONDS).execute()
            return count <= limit
        if await cache.aadd(name, 1, timeout=2 * WINDOW_SECONDS):
            return True
        return await cache.aincr(name) <= limit
    except ValueError:  # the window expired between add and incr
        await cache.aset(name, 1, timeout=2 * WINDOW_SECONDS)
        return True
    except Exception as exc:  # the cache is down: do not punish the user for it
        logger.warning("Rate limit store unavailable: %r", exc)
        return True
