"""A bound on the sockets joining at once in this process; the rest wait their turn, briefly.

A join costs database and Redis round trips (authentication, the room, presence, the relay, the
log). After a Redis restart every client of the cluster comes back within seconds; taken all
together, the joins waited behind each other longer than daphne's handshake timeout and the
clients' own, so most were dropped unanswered and retried: work for nobody, and no recovery
(docs/reliability.md, "Chaos run"). Past `MAX_JOINS_IN_PROGRESS`, a socket waits for a place,
first come first served, at most `JOIN_WAIT_MS` (a burst of a room's phones, or of a deploy's
sockets, is only queued: a join takes milliseconds); one that gets no place in that time is
accepted and told, without a database or Redis call, to come back in a few seconds (`error`
`unavailable` with a `retryAfter` spread at random, close 4503), so the joins in progress, and
those queued, finish within the handshake timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque

from django.utils import translation
from django.utils.translation import gettext as _

from . import broadcast, metrics, protocol
from .conf import realtime_settings
from .language import language_of

logger = logging.getLogger("realtime.consumer")

# The key of the scope that holds a socket's place among the joins in progress.
SCOPE_KEY = "realtime_join"
# A refused client is told to come back after 1 to this many seconds, at random, so that the
# refused do not all come back in the same instant.
RETRY_AFTER_MAX_SECONDS = 5

_in_progress = 0
# The sockets waiting for a place, first come first served; a place given back goes to the first.
# Only waiters still waiting are kept: one whose wait ended without a place takes itself out.
_waiting: deque[asyncio.Future] = deque()


def in_progress() -> int:
    return _in_progress


def waiting() -> int:
    return len(_waiting)


class JoinPlace:
    """A socket's place among the joins in progress; given back once (its join ended, or the socket)."""

    def __init__(self, *, handed_over: bool = False) -> None:
        global _in_progress
        if not handed_over:  # a place handed over is already counted
            _in_progress += 1
        self.held = True

    def release(self) -> None:
        global _in_progress
        if not self.held:
            return
        self.held = False
        while _waiting:
            waiter = _waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the place passes to the first still waiting
                return
        _in_progress -= 1


async def take_place(limit: int, wait_seconds: float) -> JoinPlace | None:
    """A place among the `limit` joins in progress, waiting at most `wait_seconds`; None: none came."""
    if _in_progress < limit and not _waiting:
        return JoinPlace()
    if wait_seconds <= 0:
        return None
    waiter = asyncio.get_running_loop().create_future()
    _waiting.append(waiter)
    try:
        await asyncio.wait_for(waiter, wait_seconds)
    except TimeoutError:
        if _handed_over(waiter):  # as the wait ran out
            return JoinPlace(handed_over=True)
        return None
    except asyncio.CancelledError:  # the socket went away while it waited
        if _handed_over(waiter):
            JoinPlace(handed_over=True).release()  # a place handed over passes on to the next
        raise
    return JoinPlace(handed_over=True)


def _handed_over(waiter: asyncio.Future) -> bool:
    """Whether a waiter whose wait ended got a place; if not, it leaves the queue."""
    if waiter.done() and not waiter.cancelled():
        return True  # `release` took it out of the queue
    with contextlib.suppress(ValueError):
        _waiting.remove(waiter)
    return False


def release(scope) -> None:
    """The join of this socket ended (joined or refused): its place goes to the next."""
    place = scope.get(SCOPE_KEY)
    if place is not None:
        place.release()


def retry_after() -> int:
    return random.randint(1, RETRY_AFTER_MAX_SECONDS)


class JoinGate:
    """ASGI middleware: at most MAX_JOINS_IN_PROGRESS sockets of this process joining (0: no bound),
    the next waiting up to JOIN_WAIT_MS for a place."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        limit = realtime_settings.MAX_JOINS_IN_PROGRESS
        if scope["type"] != "websocket" or limit <= 0:
            return await self.application(scope, receive, send)
        place = await take_place(limit, realtime_settings.JOIN_WAIT_MS / 1000)
        if place is None:
            return await _refuse(scope, receive, send)
        try:
            return await self.application({**scope, SCOPE_KEY: place}, receive, send)
        finally:
            place.release()


async def _refuse(scope, receive, send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    seconds = retry_after()
    with translation.override(language_of(scope)):
        text = _("El servidor está atendiendo muchas conexiones a la vez; reintenta en %(seconds)s s.") % {
            "seconds": seconds
        }
    logger.debug("Too many joins in progress (%s): refusing %s", _in_progress, scope.get("path"))
    metrics.local.rejected("unavailable")
    metrics.local.error("unavailable")
    error = protocol.error(text, code="unavailable", retryAfter=seconds)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": broadcast.encode(error)})
    await send({"type": "websocket.close", "code": protocol.CLOSE_UNAVAILABLE})
