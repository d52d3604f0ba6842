"""Relay live events once per process, not once per socket.

Every socket of a room on this process registers here as a *member* of the room's stream (and of
its user's stream, for revocations). An event published to a stream reaches this process once:
through one Redis pub/sub subscription per process when Redis is configured (so every instance
hears it), or directly when the product runs as a single process. It is decoded once and handed,
in order, to each local member's `relay`, which checks its seq and sends the ready text, or holds
it while that socket sends from the log (docs/performance.md, "Relay once per process").

Losing Redis is never silent: a broken or unanswering subscription tells every local member at
once (`relay_lost`), so each socket says so and closes, and its client resumes from its seq once
the room is back. The next socket to join subscribes anew.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import weakref
from typing import Any, Protocol

from django.conf import settings

from . import clock
from .conf import realtime_settings
from .redis_client import get_redis, key, redis_enabled

logger = logging.getLogger("realtime.fanout")

# How long a join waits for Redis to confirm its subscription.
SUBSCRIBE_TIMEOUT = 5.0
# How many members a heartbeat refreshes side by side (each a round trip to the presence store;
# well under the Redis client's pool of connections).
HEARTBEAT_BATCH = 50


class Member(Protocol):
    async def relay(self, event: dict[str, Any]) -> None:
        """Take one event of a stream this member joined; must not wait on anything but the socket."""

    def relay_lost(self) -> None:
        """The relay lost Redis: events may have been missed."""

    async def heartbeat(self) -> None:
        """Refresh whatever this member keeps alive (called once per heartbeat, beside other members)."""


def room_stream(inventory_id: int) -> str:
    return f"room.{int(inventory_id)}"


def user_stream(user_id) -> str:
    return f"user.{int(user_id)}"


def _redis_channel(stream: str) -> str:
    return key("live", stream)


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class Fanout:
    """The members of each stream on this process (and event loop), and the subscription feeding them."""

    def __init__(self) -> None:
        # stream -> members, in join order (a dict keeps order and removes in O(1)).
        self._members: dict[str, dict[Member, None]] = {}
        self._heartbeat: asyncio.Task | None = None
        self._link: _RedisLink | None = None
        # Without Redis: events published in this process, delivered by one task of the fanout's.
        self._local: asyncio.Queue | None = None
        self._local_task: asyncio.Task | None = None

    # Membership.

    async def join(self, stream: str, member: Member) -> None:
        """Add a member; returns once events published from now on will reach it.

        Raises when Redis cannot confirm the subscription: the caller refuses the socket.
        """
        members = self._members.setdefault(stream, {})
        members[member] = None
        self._ensure_heartbeat()
        if not redis_enabled():
            return
        try:
            if self._link is None or self._link.lost:
                self._link = _RedisLink(self)
            await self._link.subscribe(_redis_channel(stream))
        except BaseException:
            self.leave(stream, member)
            raise

    def leave(self, stream: str, member: Member) -> None:
        """Remove a member; the subscription of an empty stream ends at the next heartbeat."""
        members = self._members.get(stream)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._members[stream]

    def members(self, stream: str) -> list[Member]:
        return list(self._members.get(stream, ()))

    # Publishing and delivery.

    async def publish(self, stream: str, events: list[dict[str, Any]]) -> None:
        """Send events, in order, to every member of the stream on every instance."""
        if not events:
            return
        if not redis_enabled():
            if self._local is None:
                self._local = asyncio.Queue()
                self._local_task = _task(self._deliver_local())
            for event in events:
                self._local.put_nowait((stream, event))
            return
        channel = _redis_channel(stream)
        async with get_redis().pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(channel, encode(event))
            await pipe.execute()

    async def _deliver_local(self) -> None:
        while True:
            stream, event = await self._local.get()
            await self.deliver(stream, event)

    async def deliver(self, stream: str, event: dict[str, Any]) -> None:
        """Hand one event to each local member of the stream, in join order."""
        for member in list(self._members.get(stream, ())):
            try:
                await member.relay(event)
            except OSError as exc:  # ASGI: a send to a socket that is gone (its disconnect comes next)
                logger.debug("Relay of %s to a closed socket of %s: %r", event.get("type"), stream, exc)
            except Exception:
                logger.exception("Relay of %s to a member of %s failed", event.get("type"), stream)

    def lost(self, exc: BaseException) -> None:
        """The subscription broke: every member may have missed events; tell them all now."""
        everyone = {member: None for members in self._members.values() for member in members}
        logger.error("Live relay lost Redis (%r): telling %s socket(s)", exc, len(everyone))
        self._members.clear()
        for member in everyone:
            try:
                member.relay_lost()
            except Exception:
                logger.exception("Could not tell a member the relay was lost")

    # Heartbeat: one task per process, instead of a timer per socket that would fire for a whole
    # burst of connects in the same instant. A beat starts every heartbeat interval, however long
    # the one before took, and refreshes its members HEARTBEAT_BATCH at a time: an entry expires
    # after two intervals, and on a busy process one refresh after another (a round trip each,
    # waiting its turn on the event loop) took longer than that for 500 sockets, so the room's
    # presence lost whole instances (docs/reliability.md, "Chaos run").

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = _task(self._beat_forever())

    async def _beat_forever(self) -> None:
        started = clock.monotonic()
        while self._members:
            await clock.sleep(max(0.0, started + realtime_settings.heartbeat_seconds - clock.monotonic()))
            started = clock.monotonic()
            await self.beat()
            if self._link is not None and not self._link.lost:
                await self._link.unsubscribe_unused()

    async def beat(self) -> None:
        """Refresh every local member once, HEARTBEAT_BATCH at a time."""
        everyone = list({member: None for members in list(self._members.values()) for member in members})
        for start in range(0, len(everyone), HEARTBEAT_BATCH):
            batch = everyone[start : start + HEARTBEAT_BATCH]
            outcomes = await asyncio.gather(*(member.heartbeat() for member in batch), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    logger.warning("Heartbeat failed for a member: %r", outcome)

    async def aclose(self) -> None:
        for task in (self._heartbeat, self._local_task):
            if task is not None:
                task.cancel()
        if self._link is not None:
            await self._link.close()
        self._members.clear()


class _RedisLink:
    """One Redis pub/sub connection feeding a Fanout; once lost, it stays lost (a new one replaces it)."""

    def __init__(self, fanout: Fanout) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.fanout = fanout
        self.lost = False
        # No silent retries: a broken connection must be seen, not papered over (events would
        # have been missed in between).
        self._client = aioredis.Redis.from_url(
            settings.REDIS_URL,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=2,
            socket_keepalive=True,
            client_name=key("live-relay"),
        )
        self._pubsub = self._client.pubsub()
        self._confirmed: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        # SUBSCRIBE and UNSUBSCRIBE go out one at a time, so their confirmations come back in the
        # order the bookkeeping below expects.
        self._commands = asyncio.Lock()
        self._prefix_len = len(_redis_channel(""))

    async def subscribe(self, channel: str) -> None:
        async with self._commands:
            confirmed = self._confirmed.get(channel)
            if confirmed is None:
                confirmed = self._confirmed[channel] = asyncio.get_running_loop().create_future()
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException as exc:
                    self._fail(exc)
                    raise
                if self._reader is None:
                    self._reader = _task(self._read_forever())
        await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT)

    async def unsubscribe_unused(self) -> None:
        """Stop hearing streams with no member here (a member that joins meanwhile subscribes anew)."""
        async with self._commands:
            used = {_redis_channel(stream) for stream in self.fanout._members}
            unused = [
                channel for channel, done in self._confirmed.items() if done.done() and channel not in used
            ]
            if unused:
                for channel in unused:
                    del self._confirmed[channel]
                await self._pubsub.unsubscribe(*unused)

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.5, min(5.0, realtime_settings.heartbeat_seconds))
        heard = pinged = loop.time()
        try:
            while True:
                message = await self._pubsub.get_message(timeout=interval)
                now = loop.time()
                if message is None:
                    if now - heard > 2 * interval:
                        raise ConnectionError(f"Redis did not answer for {now - heard:.1f} s")
                    if now - pinged >= interval:
                        pinged = now
                        await self._pubsub.ping()
                    continue
                heard = now
                kind = message["type"]
                if kind == "message":
                    stream = message["channel"][self._prefix_len :].decode()
                    await self.fanout.deliver(stream, json.loads(message["data"]))
                elif kind == "subscribe":
                    confirmed = self._confirmed.get(message["channel"].decode())
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
            self.fanout.lost(exc)

    def _fail(self, exc: BaseException) -> None:
        self.lost = True
        for confirmed in self._confirmed.values():
            if not confirmed.done():
                confirmed.set_exception(ConnectionError(f"Redis subscription lost: {exc!r}"))
                confirmed.exception()  # retrieved: a waiter may have given up already
        self._closing = _task(self.close())  # referenced, so it is not collected before it runs

    async def close(self) -> None:
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        try:
            await self._pubsub.aclose()
            await self._client.aclose()
        except Exception as exc:
            logger.debug("Closing the Redis subscription: %r", exc)


def _task(coroutine) -> asyncio.Task:
    """A task of the fan-out's own, in a fresh context: a member's handlers never run inside the
    context of whichever socket or publisher happened to start it (its language, its ORM thread)."""
    return asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())


_fanouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_fanout() -> Fanout:
    """The fan-out of the running event loop (the server has one loop; tests have one per test)."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout()
    return fanout
