"""The live room's socket: authenticate, join, hand each client message to its command, relay the room.

The concerns live in their own modules: frame checks (frames), commands and rate limits (commands),
presence (membership), the event log (replay), the relay of the room's events (relaying, fanout),
language (language), errors (inventory.exceptions.error_report).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError
from django.utils import translation
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from inventory import access, services
from inventory.exceptions import InventoryCompleted, InventoryError, database_down_message, error_report

from . import broadcast, clock, commands, frames, joins, metrics, protocol, ratelimit, replay, revocation
from .conf import realtime_settings
from .db import hop
from .fanout import get_fanout, room_stream, user_stream
from .language import language_of
from .membership import RoomMembership
from .presence import USER_LIMIT, Connection
from .relaying import OwnEvents, RelayedEvents, later, with_ref

logger = logging.getLogger("realtime.consumer")

CLOSE_FOR_STATUS = {
    400: protocol.CLOSE_NOT_FOUND,
    403: protocol.CLOSE_FORBIDDEN,
    404: protocol.CLOSE_NOT_FOUND,
}


def _LIVE_DOWN() -> str:  # noqa: N802 - a message, translated when used
    return _("Las actualizaciones en vivo no están disponibles ahora; reintenta en unos segundos.")


@hop
def _open_room(user, agency, month, year):
    room = access.room_resolve(user, agency=agency, month=month, year=year)
    return room, services.inventory_get_or_open(room=room)


@hop
def _state_and_access(inventory_id, access):
    """The inventory, and why the socket lost its access since it was authorized (None: it did not)."""
    return replay.inventory_state.func(inventory_id), revocation.access_lost(access)


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

    async def connect(self):
        self.user = self.scope.get("user")
        self.last_seq = 0
        # Accept first, so that every refusal can be explained before the close.
        await self.accept()
        try:
            async with self._holding():
                await self._join()
        except DatabaseError as exc:
            logger.error("Database unavailable while joining: %s", exc)
            await self._leave_room()
            await self._database_down()
        except RedisError as exc:  # presence listed us, then Redis went away: not a 1011
            logger.error("Redis unavailable while joining: %r", exc)
            await self._leave_room(grace=False)
            await self._reject(protocol.CLOSE_UNAVAILABLE, _LIVE_DOWN(), "unavailable")
        finally:
            joins.release(self.scope)

    async def _join(self) -> None:
        if self.scope.get("database_unavailable"):
            raise DatabaseError("the database was unreachable while authenticating")
        if self.user is None or not self.user.is_authenticated:
            message = _("Autenticación requerida: inicia sesión o conecta con un token.")
            return await self._reject(protocol.CLOSE_UNAUTHENTICATED, message, "unauthenticated")
        refusal = await ratelimit.connect_refusal(self.user.pk)
        if refusal is not None:
            return await self._reject(refusal.close_code, refusal.message, refusal.code, **refusal.details)
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            self.room, self.inventory = await _open_room(
                self.user, kwargs["agency"], kwargs["month"], kwargs["year"]
            )
        except InventoryError as exc:
            return await self._reject(
                CLOSE_FOR_STATUS.get(exc.status, protocol.CLOSE_NOT_FOUND), exc.message, exc.code
            )
        if not self.inventory.is_open:
            return await self._reject_completed(self.inventory)

        self.group_name = room_stream(self.inventory.pk)
        self.own.user_id = str(self.user.pk)
        connection = Connection(
            connection_id=self.channel_name,
            user_id=str(self.user.pk),
            user_name=protocol.display_name(self.user),
            since=clock.now(),
            instance=metrics.INSTANCE_ID,
        )
        self.access = revocation.SocketAccess.of(self.scope, self.user, self.room.agency)
        limit, user_limit = (
            realtime_settings.MAX_CONNECTIONS_PER_ROOM,
            realtime_settings.MAX_CONNECTIONS_PER_USER,
        )
        self.membership, admission = await RoomMembership.join(
            self.inventory, connection, room_key=self.room.key, limit=limit, user_limit=user_limit
        )
        if not admission.joined:
            return await self._refuse_place(admission.refused)
        fanout = get_fanout()
        self.streams = (self.group_name, user_stream(self.user.pk))
        try:
            for stream in self.streams:
                await fanout.join(stream, self)
        except Exception as exc:
            # Without the live relay there is no live room: say so; the client retries later.
            logger.error("Live relay unavailable, refusing %s: %r", self.channel_name, exc)
            self._leave_streams()
            await self.membership.abandon()
            return await self._reject(protocol.CLOSE_UNAVAILABLE, _LIVE_DOWN(), "unavailable")
        self.joined = True
        metrics.local.connected(connection.user_id)
        metrics.ensure_reporter()

        # Read the state only now that we are in the streams: whatever commits later reaches us,
        # a revocation included; one that committed since the room was authorized is caught here.
        self.inventory, lost = await _state_and_access(self.inventory.pk, self.access)
        if lost is not None:
            return await self._revoke(lost)
        if not self.inventory.is_open:
            return await self._reject_completed(self.inventory)
        since = replay.since_in_query(self.scope)
        self.last_seq = self.inventory.last_seq
        # Read what a resuming client missed before greeting it, so that a database failure is
        # a clean refusal rather than a socket dropped halfway through its join.
        backlog = await replay.backlog(self.inventory, since) if since is not None else None
        logger.debug("%s joined %s (%s)", connection.user_name, self.room.key, self.channel_name)
        if admission.first:  # a user's further sockets, or a quick return, are no news to the room
            await broadcast.apublish(self.inventory.pk, protocol.user_joined(self.inventory, self.user))
        await self.send_presence()
        if backlog is not None:
            await self._send_backlog(backlog)

    async def disconnect(self, code):
        self.disconnected = True
        await self._leave_room(grace=self._leave_with_grace)
        logger.debug("%s closed (code %s)", self.channel_name, code)

    async def _leave_room(self, *, grace: bool = True) -> None:
        """Leave the streams and presence (once; the room hears of it after the grace period, if any)."""
        self._leave_streams()
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
            await self._answer_error(exc, frame)

    async def _answer_error(self, exc: Exception, frame: frames.Frame) -> None:
        report = error_report(exc)
        if isinstance(exc, ObjectDoesNotExist):
            return await self.error(_("Este inventario ya no existe."), "inventory_not_found", ref=frame.ref)
        if report is None and isinstance(exc, DatabaseError):
            report = error_report(DatabaseError())  # whatever the database failed with, nothing was saved
        if report is None:
            logger.exception("Failed to handle %s in %s", frame.type, self.room.key)
            return await self.error(
                _("Error interno: el mensaje no se procesó."), "internal_error", ref=frame.ref
            )
        if report.status == 503:  # the database or Redis is down: kept and sent again by the client
            logger.error("%s handling %s: %r", report.code, frame.type, exc)
        else:
            logger.debug("Refused %s from %s: %s (%s)", frame.type, self.user.pk, report.code, report.message)
        echo = commands.scan_echo(frame.type, frame.data) if isinstance(exc, InventoryError) else {}
        await self.error(report.message, report.code, ref=frame.ref, **report.details, **echo)

    # What commands use.

    def expecting_own(self, kind, scan, ref):
        """While a command runs: the broadcast of the event it records answers it (carries its ref)."""
        return self.own.expecting(kind, scan, ref)

    async def resume(self, since: int, *, ref: str | None = None) -> None:
        async with self._holding():
            await self._send_backlog(await replay.backlog(self.inventory, since), ref=ref)

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
        await self._reject(protocol.CLOSE_TOO_MANY, "Rate limit exceeded", "rate_limited", ref=ref, **details)

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
                await self._refuse_place(refused)

    async def _refuse_place(self, refused: str) -> None:
        if refused == USER_LIMIT:
            limit = realtime_settings.MAX_CONNECTIONS_PER_USER
            message = _("Ya tienes %(max)s conexiones abiertas en esta sala: cierra alguna para abrir otra.")
            return await self._reject(
                protocol.CLOSE_TOO_MANY, message % {"max": limit}, "user_connection_limit"
            )
        message = _("La sala está llena: máximo %(max)s conexiones.") % {
            "max": realtime_settings.MAX_CONNECTIONS_PER_ROOM
        }
        await self._reject(protocol.CLOSE_ROOM_FULL, message, "room_full")

    def relay_lost(self) -> None:
        """Redis went away under this socket: say so and close; the client resumes by seq."""
        later(self._reject(protocol.CLOSE_UNAVAILABLE, _LIVE_DOWN(), "unavailable"))

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

    # Helpers.

    async def _send_backlog(self, backlog: replay.Backlog, *, ref: str | None = None) -> None:
        for message in backlog.messages:
            await self.reply(message, ref)
        self.last_seq = backlog.last_seq

    def _leave_streams(self) -> None:
        fanout = get_fanout()
        for stream in self.streams:
            fanout.leave(stream, self)
        self.streams = ()

    async def _reject(self, close_code: int, message: str, code: str, *, ref=None, **details) -> None:
        logger.debug("Closing %s with %s: %s", self.scope.get("path"), close_code, code)
        metrics.local.rejected(code)
        await self.error(message, code, ref=ref, **details)
        await self.close(code=close_code)

    async def _database_down(self) -> None:
        await self._reject(protocol.CLOSE_UNAVAILABLE, database_down_message(), "database_unavailable")

    async def _revoke(self, reason: str) -> None:
        """The socket lost its access: leave the room at once (no grace), explain, close."""
        logger.info("Closing %s of user %s: %s", self.channel_name, self.user.pk, reason)
        with translation.override(self.language):
            refusal = revocation.refusal_for(reason, agency_name=self.room.agency.name)
            self._leave_with_grace = False
            await self._leave_room(grace=False)
            await self._reject(refusal.close_code, refusal.message, refusal.code)

    async def _reject_completed(self, inventory) -> None:
        await self._leave_room()
        await self._reject(
            protocol.CLOSE_COMPLETED, InventoryCompleted(inventory).message, "inventory_completed"
        )
