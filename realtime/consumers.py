"""The live room's socket: accept, join, hand each client message to its command, relay the room.

The concerns live in their own modules: the join (joining), refusals and their close codes
(refusals), frame checks (frames), commands, their errors and rate limits (commands), presence
(membership), the event log (replay), the relay of the room's events (relaying, fanout), language
(language).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import DatabaseError
from django.utils import translation
from redis.exceptions import RedisError

from . import (
    broadcast,
    commands,
    frames,
    joining,
    joins,
    metrics,
    protocol,
    ratelimit,
    refusals,
    replay,
    revocation,
)
from .db import hop
from .fanout import get_fanout
from .language import language_of
from .relaying import OwnEvents, RelayedEvents, later, with_ref

logger = logging.getLogger("realtime.consumer")


class InventoryConsumer(RelayedEvents, AsyncJsonWebsocketConsumer):
    """One socket in the room `{agency}/{month}/{year}`.

    Room events do not come through the channel layer: `realtime.fanout` receives each once per
    process and hands it to `relay`, in order. `disconnect` runs once: from channels'
    `websocket_disconnect`, or, when the consumer ends without one (cancelled, crashed), from
    the done-callback of its task.
    """

    channel_layer_alias = None  # no per-socket channel, queue or receive task
    joined = False
    inventory = None
    membership = None
    access = None
    streams = ()
    own: OwnEvents
    disconnected = False
    # Whether the room may wait a grace period before hearing that this user left.
    _leave_with_grace = True

    async def websocket_connect(self, message):
        # The connection's id in presence and the logs (there is no layer channel to name it).
        self.channel_name = f"{metrics.INSTANCE_ID}.{secrets.token_hex(6)}"
        self.language = language_of(self.scope)
        self.own = OwnEvents()  # the refs of this client's requests answered by the room's broadcast
        asyncio.current_task().add_done_callback(self._ended)
        with translation.override(self.language):
            await super().websocket_connect(message)

    def _ended(self, task) -> None:
        """The consumer's task ended without a websocket.disconnect (cancelled, crashed): leave the room."""
        if not self.disconnected:
            later(self.disconnect(1006))

    async def websocket_receive(self, message):
        # Answers to this client speak its language; room broadcasts keep the default (protocol v1's).
        with translation.override(self.language):
            await super().websocket_receive(message)

    async def dispatch(self, message):
        # Channels closes stale database connections in a thread before every handler: one trip
        # through the process's one sync thread per frame. Every database call here is a `hop`,
        # which does that itself, so frames go to their handler directly.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        self.user = self.scope.get("user")
        self.last_seq = 0
        # Accept first, so that every refusal can be explained before the close.
        await self.accept()
        try:
            async with self._holding():
                await joining.join(self)
        except refusals.Refused as refused:
            await self._leave_room(grace=refused.grace)
            await self._reject(refused.refusal)
        except DatabaseError as exc:
            logger.error("Database unavailable while joining: %s", exc)
            await self._leave_room()
            await self._database_down()
        except RedisError as exc:  # presence listed us, then Redis went away: not a 1011
            logger.error("Redis unavailable while joining: %r", exc)
            await self._leave_room(grace=False)
            await self._reject(refusals.live_down())
        finally:
            joins.release(self.scope)

    async def disconnect(self, code):
        self.disconnected = True
        await self._leave_room(grace=self._leave_with_grace)
        logger.debug("%s closed (code %s)", self.channel_name, code)

    async def _leave_room(self, *, grace: bool = True) -> None:
        """Leave the streams and presence (once; the room hears of it after the grace period, if any)."""
        self.leave_streams()
        if not self.joined:
            return
        self.joined = False
        metrics.local.disconnected(self.membership.connection.user_id)
        await self.membership.leave(grace=grace)

    # Client messages.

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        metrics.local.messages_received += 1
        if not self.joined:
            return
        try:
            frame = frames.decode(text_data, bytes_data)
        except frames.FrameError as exc:
            if exc.too_big:
                await self.error(exc.message, exc.code)
                await self.close(code=protocol.CLOSE_MESSAGE_TOO_BIG)
            elif not await commands.over_limit(self, ratelimit.INVALID, exc.ref):
                await self.error(exc.message, exc.code, ref=exc.ref)
            return
        try:
            await commands.execute(self, frame)
        except revocation.AccessRevoked as exc:
            await self._revoke(exc.reason)
        except Exception as exc:
            message, code, details = commands.error_reply(exc, frame, room=self.room.key, user=self.user.pk)
            await self.error(message, code, ref=frame.ref, **details)

    # What commands and the join use.

    def expecting_own(self, kind, scan, ref):
        """While a command runs: the broadcast of the event it records answers it (carries its ref)."""
        return self.own.expecting(kind, scan, ref)

    async def resume(self, since: int, *, ref: str | None = None) -> None:
        async with self._holding():
            await self.send_backlog(await replay.backlog(self.inventory, since), ref=ref)

    async def send_backlog(self, backlog: replay.Backlog, *, ref: str | None = None) -> None:
        for message in backlog.messages:
            await self.reply(message, ref)
        self.last_seq = backlog.last_seq

    async def send_presence(self, *, ref: str | None = None) -> None:
        await self.reply(protocol.presence(self.inventory, await self.membership.users()), ref)

    async def reply(self, message, ref: str | None = None) -> None:
        text = broadcast.encode(message)
        await self.send(text_data=with_ref(text, ref) if ref is not None else text)
        metrics.local.messages_sent += 1

    async def error(self, message: str, code: str, *, ref: str | None = None, **details) -> None:
        metrics.local.error(code)
        await self.reply(protocol.error(message, code=code, **details), ref)

    async def refuse_flood(self, *, ref: str | None = None, **details) -> None:
        self._leave_with_grace = False
        await self._leave_room(grace=False)
        await self._reject(refusals.too_many_messages(**details), ref=ref)

    def leave_streams(self) -> None:
        fanout = get_fanout()
        for stream in self.streams:
            fanout.leave(stream, self)
        self.streams = ()

    # The process's relay and heartbeat.

    async def heartbeat(self) -> None:
        """Keep this connection in presence (called by the process's one heartbeat task).

        A place the store lost (Redis restarted) is taken again within the limits; refused, the
        socket leaves quietly and closes as a join refused so would.
        """
        if self.joined:
            refused = await self.membership.heartbeat()
            if refused:
                self._leave_with_grace = False
                await self._leave_room(grace=False)
                await self._reject(refusals.place_refused(refused))

    def relay_lost(self) -> None:
        """Redis went away under this socket: say so and close; the client resumes by seq."""
        later(self._reject(refusals.live_down()))

    async def user_revoked(self, event):
        """Some access of this user was taken away: check this socket's own, and close if it is gone."""
        if not self.joined or event.get("agency") not in (None, self.access.agency_id):
            return
        try:
            lost = await hop(revocation.access_lost)(self.access)
        except DatabaseError as exc:  # the next write checks again
            logger.warning("Could not check access of %s: %s", self.channel_name, exc)
            return
        if lost is not None:
            await self._revoke(lost)

    async def _backfill(self, until: int) -> None:
        for seq, message in await replay.events_after(self.inventory, self.last_seq, until=until):
            if seq > self.last_seq:
                await self.reply(message, self.own.ref_of(message))
                self.last_seq = seq

    # Closing.

    async def _reject(self, refusal: refusals.Refusal, *, ref: str | None = None) -> None:
        logger.debug("Closing %s with %s: %s", self.scope.get("path"), refusal.close_code, refusal.code)
        metrics.local.rejected(refusal.code)
        await self.error(refusal.message, refusal.code, ref=ref, **refusal.details)
        await self.close(code=refusal.close_code)

    async def _database_down(self) -> None:
        await self._reject(refusals.database_down())

    async def _revoke(self, reason: str) -> None:
        """The socket lost its access: leave the room at once (no grace), explain, close."""
        logger.info("Closing %s of user %s: %s", self.channel_name, self.user.pk, reason)
        with translation.override(self.language):
            refusal = revocation.refusal_for(reason, agency_name=self.room.agency.name)
            self._leave_with_grace = False
            await self._leave_room(grace=False)
            await self._reject(refusal)
