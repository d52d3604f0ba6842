"""WebSocket message rate limit: N messages per minute, per user, per message type.

Counted in Django's cache, so with Redis every connection and instance of a user shares one
budget; windows are cache keys that expire on their own.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

from .conf import realtime_settings

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
        if await cache.aadd(name, 1, timeout=2 * WINDOW_SECONDS):
            return True
        return await cache.aincr(name) <= limit
    except ValueError:  # the window expired between add and incr
        await cache.aset(name, 1, timeout=2 * WINDOW_SECONDS)
        return True
    except Exception as exc:  # the cache is down: do not punish the user for it
        logger.warning("Rate limit store unavailable: %r", exc)
        return True
