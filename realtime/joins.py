"""A bound on the sockets joining at once in this process; the rest are refused at once.

A join costs database and Redis round trips (authentication, the room, presence, the relay, the
log). After a Redis restart every client of the cluster comes back within seconds; taken all
together, the joins waited behind each other longer than daphne's handshake timeout and the
clients' own, so most were dropped unanswered and retried: work for nobody, and no recovery
(docs/reliability.md, "Chaos run"). Past `MAX_JOINS_IN_PROGRESS`, a socket is accepted and told
at once, without a database or Redis call, to come back in a few seconds (`error` `unavailable`
with a `retryAfter` spread at random, close 4503), so the joins in progress finish in time.
"""

from __future__ import annotations

import logging
import random

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


def in_progress() -> int:
    return _in_progress


class JoinPlace:
    """A socket's place among the joins in progress; given back once (its join ended, or the socket)."""

    def __init__(self) -> None:
        global _in_progress
        _in_progress += 1
        self.held = True

    def release(self) -> None:
        global _in_progress
        if self.held:
            self.held = False
            _in_progress -= 1


def release(scope) -> None:
    """The join of this socket ended (joined or refused): its place goes to the next."""
    place = scope.get(SCOPE_KEY)
    if place is not None:
        place.release()


def retry_after() -> int:
    return random.randint(1, RETRY_AFTER_MAX_SECONDS)


class JoinGate:
    """ASGI middleware: at most MAX_JOINS_IN_PROGRESS sockets of this process joining (0: no bound)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        limit = realtime_settings.MAX_JOINS_IN_PROGRESS
        if scope["type"] != "websocket" or limit <= 0:
            return await self.application(scope, receive, send)
        if _in_progress >= limit:
            return await _refuse(scope, receive, send)
        place = JoinPlace()
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
