"""The live room: authenticate, join, dispatch client messages to services, relay broadcasts."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, DataError
from django.utils import translation
from django.utils.translation import gettext as _

from inventory import rooms, selectors, services
from inventory.exceptions import InvalidInput, InventoryCompleted, InventoryError, refused_value_message

from . import broadcast, metrics, protocol, ratelimit, revocation
from .conf import realtime_settings
from .db import hop
from .fanout import get_fanout, room_stream, user_stream
from .presence import USER_LIMIT, Admission, Connection, get_presence, summarize_users
from .relaying import RelayedEvents, later

logger = logging.getLogger("realtime.consumer")

CLOSE_FOR_STATUS = {
    400: protocol.CLOSE_NOT_FOUND,
    403: protocol.CLOSE_FORBIDDEN,
    404: protocol.CLOSE_NOT_FOUND,
}


def _DATABASE_DOWN() -> str:  # noqa: N802 - a message, translated when used
    return _("La base de datos no está disponible; no se guardó nada. Inténtalo de nuevo.")


def _LIVE_DOWN() -> str:  # noqa: N802
    return _("Las actualizaciones en vivo no están disponibles ahora; reintenta en unos segundos.")


HANDLERS = {
    protocol.USER_JOINED: "_handle_user_joined",
    protocol.SCAN_ADDED: "_handle_scan_added",
    protocol.SCAN_REMOVED: "_handle_scan_removed",
    protocol.INVENTORY_COMPLETED: "_handle_inventory_completed",
    protocol.PING: "_handle_ping",
    protocol.RESUME: "_handle_resume",
}


@hop
def _open_room(user, agency, month, year):
    room = rooms.room_resolve(user, agency=agency, month=month, year=year)
    return room, services.inventory_get_or_open(room=room)


@hop
def _inventory_state(inventory_id):
    from inventory.models import Inventory

    return Inventory.objects.select_related("agency").get(pk=inventory_id)


@hop
def _state_and_access(inventory_id, access):
    """The inventory, and why the socket lost its access since it was authorized (None: it did not)."""
    return _inventory_state.func(inventory_id), revocation.access_lost(access)


@hop
def _access_lost(access):
    return revocation.access_lost(access)


def _guarded(service, access):
    """The service, run after checking the socket's access in the same database hop."""

    def write(**kwargs):
        reason = revocation.access_lost(access)
        if reason is not None:
            raise revocation.AccessRevoked(reason)
        return service(**kwargs)

    return hop(write)


@hop
def _events_after(inventory, seq, until=None):
    events = selectors.events_since(inventory, seq)
    if until is not None:
        events = events.filter(seq__lte=until)
    return [(event.seq, protocol.event_message(event, inventory)) for event in events]


@hop
def _snapshot(inventory_id):
    inventory = _inventory_state.func(inventory_id)
    return protocol.snapshot(inventory, list(selectors.scans_of(inventory)), seq=inventory.last_seq)


class InventoryConsumer(RelayedEvents, AsyncJsonWebsocketConsumer):
    """One socket in the room `{agency}/{month}/{year}`.

    Room events do not come through the channel layer: `realtime.fanout` receives each once per
    process and hands it to `relay`, in order.
    """

    channel_layer_alias = None  # no per-socket channel, queue or receive task
    joined = False
    inventory = None
    connection = None
    access = None
    streams = ()
    # Whether the room may wait a grace period before hearing that this user left.
    _leave_with_grace = True

    async def dispatch(self, message):
        """Route a message to its handler, without channels' per-message database hop.

        Channels 4.2+ awaits close_old_connections() in a thread before every handler; here every
        ORM call already runs in a database hop (realtime.db), which does that itself, so the hop would
        only tax the relay of each broadcast to each socket.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope, receive, send):
        """Whatever ends the consumer (a close, a crash, the server stopping), it leaves the room."""
        # The connection's id in presence and the logs (there is no layer channel to name it).
        self.channel_name = f"{metrics.INSTANCE_ID}.{secrets.token_hex(6)}"
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._cleanup()

    def relay_lost(self) -> None:
        """Redis went away under this socket: say so and close; the client resumes by seq."""
        later(self._reject(protocol.CLOSE_UNAVAILABLE, _LIVE_DOWN(), "unavailable"))

    async def _cleanup(self) -> None:
        try:
            await self.disconnect(1006)
        except Exception as exc:
            logger.warning("Cleanup of %s failed: %r", getattr(self, "channel_name", "?"), exc)

    async def websocket_connect(self, message):
        self.language = _language_of(self.scope)
        with translation.override(self.language):
            await super().websocket_connect(message)

    async def websocket_receive(self, message):
        # Answers to this client speak its language; room broadcasts keep the default (the seed's).
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
            if self.joined:
                await self.disconnect(protocol.CLOSE_UNAVAILABLE)
            await self._database_down()

    async def _join(self) -> None:
        if self.scope.get("database_unavailable"):
            raise DatabaseError("the database was unreachable while authenticating")
        if self.user is None or not self.user.is_authenticated:
            await self._reject(
                protocol.CLOSE_UNAUTHENTICATED,
                _("Autenticación requerida: inicia sesión o conecta con un token."),
                "unauthenticated",
            )
            return
        attempts = await ratelimit.count_connect(self.user.pk)
        if not attempts.allowed:
            await self._reject(
                protocol.CLOSE_TOO_MANY,
                _("Demasiadas conexiones seguidas: máximo %(max)s por minuto. Reintenta en %(seconds)s s.")
                % {"max": attempts.limit, "seconds": attempts.retry_after},
                "connect_rate_limited",
                retryAfter=attempts.retry_after,
            )
            return
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            self.room, self.inventory = await _open_room(
                self.user, kwargs["agency"], kwargs["month"], kwargs["year"]
            )
        except InventoryError as exc:
            await self._reject(
                CLOSE_FOR_STATUS.get(exc.status, protocol.CLOSE_NOT_FOUND), exc.message, exc.code
            )
            return
        if not self.inventory.is_open:
            await self._reject_completed(self.inventory)
            return

        self.group_name = room_stream(self.inventory.pk)
        self.connection = Connection(
            connection_id=self.channel_name,
            user_id=str(self.user.pk),
            user_name=protocol.display_name(self.user),
            since=time.time(),
            instance=metrics.INSTANCE_ID,
        )
        self.access = revocation.SocketAccess.of(self.scope, self.user, self.room.agency)
        limit = realtime_settings.MAX_CONNECTIONS_PER_ROOM
        user_limit = realtime_settings.MAX_CONNECTIONS_PER_USER
        try:
            admission = await get_presence().join(
                self.inventory.pk, self.connection, limit=limit, user_limit=user_limit
            )
        except Exception as exc:  # presence store down: let people count, unlisted
            logger.warning("Presence unavailable, joining without it: %r", exc)
            admission = Admission(True)
        await self._announce_departures(admission.expired)
        if admission.refused == USER_LIMIT:
            await self._reject(
                protocol.CLOSE_TOO_MANY,
                _("Ya tienes %(max)s conexiones abiertas en esta sala: cierra alguna para abrir otra.")
                % {"max": user_limit},
                "user_connection_limit",
            )
            return
        if not admission.joined:
            await self._reject(
                protocol.CLOSE_ROOM_FULL,
                _("La sala está llena: máximo %(max)s conexiones.") % {"max": limit},
                "room_full",
            )
            return
        fanout = get_fanout()
        self.streams = (self.group_name, user_stream(self.user.pk))
        try:
            for stream in self.streams:
                await fanout.join(stream, self)
        except Exception as exc:
            # Without the live relay there is no live room: say so; the client retries later.
            logger.error("Live relay unavailable, refusing %s: %r", self.channel_name, exc)
            self._leave_streams()
            await self._leave_presence()
            await self._reject(protocol.CLOSE_UNAVAILABLE, _LIVE_DOWN(), "unavailable")
            return
        self.joined = True
        metrics.local.connected(self.connection.user_id)
        metrics.ensure_reporter()

        # Read the state only now that we are in the groups: whatever commits later reaches us,
        # a revocation included; one that committed since the room was authorized is caught here.
        self.inventory, lost = await _state_and_access(self.inventory.pk, self.access)
        if lost is not None:
            await self._revoke(lost)
            return
        if not self.inventory.is_open:
            await self._reject_completed(self.inventory)
            return
        since = self._since_from_query()
        self.last_seq = self.inventory.last_seq
        # Read what a resuming client missed before greeting it, so that a database failure is
        # a clean refusal rather than a socket dropped halfway through its join.
        backlog = await self._backlog(since) if since is not None else None
        logger.debug("%s joined %s (%s)", self.connection.user_name, self.room.key, self.channel_name)
        if admission.first:  # a user's further sockets, or a quick return, are no news to the room
            await broadcast.apublish(self.inventory.pk, protocol.user_joined(self.inventory, self.user))
        await self._send_presence()
        if backlog is not None:
            await self._send_backlog(backlog)

    async def disconnect(self, code):
        if not self.joined:
            self._leave_streams()
            return
        self.joined = False
        metrics.local.disconnected(self.connection.user_id)
        self._leave_streams()
        grace = realtime_settings.presence_grace_seconds if self._leave_with_grace else 0
        grace_until = time.time() + grace if grace else 0
        try:
            last = await get_presence().leave(
                self.inventory.pk, self.channel_name, user_id=self.connection.user_id, grace_until=grace_until
            )
        except Exception as exc:
            logger.warning("Could not leave %s cleanly: %r", self.group_name, exc)
            return
        logger.debug("%s left %s (code %s)", self.connection.user_name, self.room.key, code)
        if last and grace_until:
            later(_announce_departure(self.inventory, self.connection, grace_until))
        elif last:
            await broadcast.apublish(
                self.inventory.pk,
                protocol.user_left(
                    self.inventory, user_id=self.connection.user_id, user_name=self.connection.user_name
                ),
            )

    # Client messages.

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        metrics.local.messages_received += 1
        if not self.joined:
            return
        raw = text_data if text_data is not None else bytes_data or b""
        size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
        if size > realtime_settings.MAX_FRAME_BYTES:
            await self._error(_("El mensaje supera el tamaño máximo de 64 KiB."), "message_too_big")
            await self.close(code=protocol.CLOSE_MESSAGE_TOO_BIG)
            return
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                if not await self._rate_limited(ratelimit.INVALID):
                    await self._error(_("El mensaje no es texto UTF-8."), "invalid_json")
                return
        try:
            content = json.loads(raw)
        except (ValueError, RecursionError):
            if not await self._rate_limited(ratelimit.INVALID):
                await self._error(_("El mensaje no es JSON válido."), "invalid_json")
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        if not self.joined:
            return
        if not isinstance(content, dict):
            if not await self._rate_limited(ratelimit.INVALID):
                await self._error(_("El mensaje debe ser un objeto JSON con type y data."), "invalid_message")
            return
        kind = content.get("type")
        if not isinstance(kind, str) or kind not in HANDLERS:
            if not await self._rate_limited(ratelimit.INVALID):
                await self._error(
                    _("Tipo de mensaje desconocido. Tipos válidos: %(types)s.")
                    % {"types": ", ".join(HANDLERS)},
                    "unknown_type",
                )
            return
        data = content.get("data")
        if data is None and kind == protocol.PING:
            data = {}
        # Counted before its data is checked: a malformed message of a known type counts too.
        if await self._rate_limited(kind, **_scan_echo(kind, data if isinstance(data, dict) else {})):
            return
        if not isinstance(data, dict):
            await self._error(_("El campo data debe ser un objeto."), "invalid_data")
            return
        logger.debug("%s -> %s in %s", self.connection.user_name, kind, self.room.key)
        try:
            await self._check_own_room(data)
            await getattr(self, HANDLERS[kind])(data)
        except revocation.AccessRevoked as exc:
            await self._revoke(exc.reason)
        except InventoryError as exc:
            logger.debug(
                "Refused %s from %s: %s (%s)", kind, self.connection.user_name, exc.code, exc.message
            )
            await self._error(exc.message, exc.code, **exc.details, **_scan_echo(kind, data))
        except ObjectDoesNotExist:
            await self._error(_("Este inventario ya no existe."), "inventory_not_found")
        except DataError:  # the database refused a value: bad input, not a database down
            await self._error(refused_value_message(), "invalid")
        except DatabaseError as exc:
            logger.error("Database unavailable handling %s: %s", kind, exc)
            await self._error(_DATABASE_DOWN(), "database_unavailable")
        except Exception:
            logger.exception("Failed to handle %s in %s", kind, self.room.key)
            await self._error(_("Error interno: el mensaje no se procesó."), "internal_error")

    async def _check_own_room(self, data) -> None:
        """A message may name its room; if it does, it must be this connection's room."""
        agency = data.get("agency")
        # Resolved as the socket's URL was (rooms.agency_find); the database only for other spellings.
        wrong = (
            agency is not None
            and not rooms.spells_agency(self.room.agency, agency)
            and not await hop(rooms.names_agency)(self.room.agency, agency)
        )
        try:
            wrong = wrong or ("month" in data and rooms.parse_month(data["month"]) != self.room.month)
            wrong = wrong or ("year" in data and rooms.parse_year(data["year"]) != self.room.year)
        except InvalidInput:
            wrong = True
        if wrong:
            raise InvalidInput(
                _("El mensaje nombra otra sala; esta conexión es de %(room)s.") % {"room": self.room.key},
                code="wrong_room",
            )

    async def _handle_user_joined(self, data):
        await self._send_presence()

    async def _handle_scan_added(self, data):
        scan_data = _scan_data(data)
        result = await _guarded(services.scan_record, self.access)(
            inventory=self.inventory,
            user=self.user,
            code=scan_data.get("code"),
            scanned_at=scan_data.get("timestamp"),
            scan_id=scan_data.get("id"),
        )
        if not result.created:
            # A retry of a stored scan: confirm it to this client alone, without counting again.
            message = protocol.scan_added(result.scan)
            message["data"]["replayed"] = True
            await self._send(message)

    async def _handle_scan_removed(self, data):
        scan_data = _scan_data(data)
        result = await _guarded(services.scan_remove, self.access)(
            inventory=self.inventory, user=self.user, code=scan_data.get("code"), scan_id=scan_data.get("id")
        )
        if not result.removed:
            # A retry of a removal already done: confirm it to this client alone, changing nothing.
            message = protocol.scan_removed(result.scan, user=result.removed_by)
            message["data"]["replayed"] = True
            await self._send(message)

    async def _handle_inventory_completed(self, data):
        # The connection names the inventory; a client's `inventoryId` (the seed's example says
        # "inv_123", an id of the old system) is ignored like `completedBy`.
        await _guarded(services.inventory_complete, self.access)(inventory=self.inventory, user=self.user)

    async def _handle_ping(self, data):
        stamp = data.get("timestamp")
        if stamp not in (None, "") and not protocol.echoable(stamp):
            raise InvalidInput(
                _("timestamp debe ser texto de hasta %(max)s caracteres o un número.")
                % {"max": protocol.ECHO_MAX_CHARS},
                field="timestamp",
            )
        await self._send(protocol.pong(stamp))

    async def _handle_resume(self, data):
        since = data.get("since")
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise InvalidInput(_("since debe ser un número de secuencia (entero ≥ 0)."), code="invalid_data")
        async with self._holding():
            await self._resume(since)

    async def heartbeat(self) -> None:
        """Keep this connection in presence (called by the process's one heartbeat task)."""
        if self.joined:
            expired = await get_presence().refresh(self.inventory.pk, self.connection)
            await self._announce_departures(expired)

    async def user_revoked(self, event):
        """Some access of this user was taken away: check this socket's own, and close if it is gone."""
        if not self.joined or event.get("agency") not in (None, self.access.agency_id):
            return
        try:
            lost = await _access_lost(self.access)
        except DatabaseError as exc:  # the next write checks again
            logger.warning("Could not check access of %s: %s", self.channel_name, exc)
            return
        if lost is not None:
            await self._revoke(lost)

    # Helpers.

    def _leave_streams(self) -> None:
        fanout = get_fanout()
        for stream in self.streams:
            fanout.leave(stream, self)
        self.streams = ()

    async def _leave_presence(self) -> None:
        try:
            await get_presence().leave(self.inventory.pk, self.channel_name)
        except Exception as exc:
            logger.warning("Could not leave presence: %r", exc)

    async def _backlog(self, since: int) -> tuple[list[dict], int]:
        """What a client that stopped at `since` missed, and the seq it then stands at.

        Every event after `since`, in order; or one snapshot when the log no longer holds them
        all, or when `since` is beyond this inventory's last event (the client's state is not ours).
        """
        current = await _inventory_state(self.inventory.pk)
        replay_max = realtime_settings.REPLAY_MAX_EVENTS
        # A long backlog costs more to replay than the state it leads to: send that instead.
        if since <= current.last_seq and (replay_max <= 0 or current.last_seq - since <= replay_max):
            events = await _events_after(self.inventory, since, until=current.last_seq)
            if [seq for seq, _ in events] == list(range(since + 1, current.last_seq + 1)):
                return [payload for _, payload in events], current.last_seq
        snapshot = await _snapshot(self.inventory.pk)
        return [snapshot], snapshot["data"]["seq"]

    async def _resume(self, since: int) -> None:
        await self._send_backlog(await self._backlog(since))

    async def _send_backlog(self, backlog: tuple[list[dict], int]) -> None:
        messages, last_seq = backlog
        for message in messages:
            await self._send(message)
        self.last_seq = last_seq

    async def _backfill(self, until: int) -> None:
        await self._send_events(await _events_after(self.inventory, self.last_seq, until=until))

    async def _send_events(self, events) -> None:
        for seq, payload in events:
            if seq > self.last_seq:
                await self._send(payload)
                self.last_seq = seq

    async def _send_presence(self) -> None:
        connections = await get_presence().connections(self.inventory.pk)
        await self._send(protocol.presence(self.inventory, summarize_users(connections)))

    async def _announce_departures(self, expired) -> None:
        """Tell the room who left with a vanished instance: users whose every connection expired."""
        if not expired:
            return
        try:
            present = {conn.user_id for conn in await get_presence().connections(self.inventory.pk)}
            gone = {conn.user_id: conn for conn in expired if conn.user_id not in present}
            for conn in gone.values():
                logger.debug(
                    "%s vanished from %s (instance %s)", conn.user_name, self.room.key, conn.instance
                )
                await broadcast.apublish(
                    self.inventory.pk,
                    protocol.user_left(self.inventory, user_id=conn.user_id, user_name=conn.user_name),
                )
        except Exception as exc:
            logger.warning("Could not announce who left %s: %r", self.room.key, exc)

    def _since_from_query(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        value = (query.get("since") or [None])[0]
        return rooms.ascii_int(value) if value is not None else None

    async def _send(self, message) -> None:
        await self.send(text_data=broadcast.encode(message))
        metrics.local.messages_sent += 1

    async def _error(self, message: str, code: str, **details) -> None:
        metrics.local.error(code)
        await self._send(protocol.error(message, code=code, **details))

    async def _reject(self, close_code: int, message: str, code: str, **details) -> None:
        logger.debug("Closing %s with %s: %s", self.scope.get("path"), close_code, code)
        metrics.local.rejected(code)
        await self._error(message, code, **details)
        await self.close(code=close_code)

    async def _database_down(self) -> None:
        await self._reject(protocol.CLOSE_UNAVAILABLE, _DATABASE_DOWN(), "database_unavailable")

    async def _revoke(self, reason: str) -> None:
        """The socket lost its access: leave the room at once (no grace), explain, close."""
        logger.info("Closing %s of user %s: %s", self.channel_name, self.user.pk, reason)
        with translation.override(self.language):
            refusal = revocation.refusal_for(reason, agency_name=self.room.agency.name)
            self._leave_with_grace = False
            if self.joined:
                await self.disconnect(refusal.close_code)
            await self._reject(refusal.close_code, refusal.message, refusal.code)

    async def _rate_limited(self, bucket: str, **echo) -> bool:
        """Count one frame; True when it is over the user's limit (refused, or the socket closed)."""
        counted = await ratelimit.count_message(self.user.pk, bucket)
        if counted.allowed:
            return False
        logger.debug("Rate limit: %s sent too many %s in %s", self.user.pk, bucket, self.room.key)
        if bucket == ratelimit.INVALID or counted.flooding:
            # Bad frames past the limit, or ten times the budget of a type: one last error, then
            # the socket is closed, as Centrifugo disconnects a client that floods it.
            self._leave_with_grace = False
            await self.disconnect(protocol.CLOSE_TOO_MANY)
            await self._reject(
                protocol.CLOSE_TOO_MANY, "Rate limit exceeded", "rate_limited", messageType=bucket, **echo
            )
            return True
        await self._error("Rate limit exceeded", "rate_limited", messageType=bucket, **echo)
        return True

    async def _reject_completed(self, inventory) -> None:
        if self.joined:
            await self.disconnect(protocol.CLOSE_COMPLETED)
        await self._reject(
            protocol.CLOSE_COMPLETED, InventoryCompleted(inventory).message, "inventory_completed"
        )


async def _announce_departure(inventory, connection: Connection, grace_until: float) -> None:
    """After the grace period, tell the room the user left, unless they came back meanwhile."""
    await asyncio.sleep(max(0.0, grace_until - time.time()))
    try:
        if await get_presence().settle(inventory.pk, connection.user_id, grace_until):
            await broadcast.apublish(
                inventory.pk,
                protocol.user_left(inventory, user_id=connection.user_id, user_name=connection.user_name),
            )
    except Exception as exc:
        logger.warning("Could not announce that %s left: %r", connection.user_name, exc)


class UnknownPathConsumer(AsyncJsonWebsocketConsumer):
    """A socket opened on a path that names no room: explain the right one and close with 4404."""

    channel_layer_alias = None

    async def connect(self):
        await self.accept()
        path = realtime_settings.WEBSOCKET_PATH.rstrip("/")
        with translation.override(_language_of(self.scope)):
            message = _("Ruta WebSocket desconocida: conecta a %(path)s/{agencia}/{mes}/{año}.") % {
                "path": path
            }
        metrics.local.rejected("not_found")
        metrics.local.error("not_found")
        await self.send(text_data=broadcast.encode(protocol.error(message, code="not_found")))
        await self.close(code=protocol.CLOSE_NOT_FOUND)


def _language_of(scope) -> str:
    """The client's language: Django's language cookie, else Accept-Language, else the default."""
    from django.utils.translation import trans_real

    cookies = scope.get("cookies") or {}
    candidates = [cookies.get(settings.LANGUAGE_COOKIE_NAME)]
    for key, value in scope.get("headers", []):
        if key == b"accept-language":
            candidates += [lang for lang, _q in trans_real.parse_accept_lang_header(value.decode("latin-1"))]
    for candidate in candidates:
        if candidate:
            try:
                return translation.get_supported_language_variant(candidate)
            except LookupError:
                continue
    return settings.LANGUAGE_CODE


def _scan_echo(kind: str, data: dict) -> dict:
    """Name the scan an error answers, so a client with several in flight knows which failed."""
    if kind not in (protocol.SCAN_ADDED, protocol.SCAN_REMOVED):
        return {}
    scan_data = data.get("scanData") if isinstance(data.get("scanData"), dict) else {}
    echo = {
        key: scan_data[key]
        for key in ("code", "id")
        if isinstance(scan_data.get(key), str) and protocol.echoable(scan_data[key])
    }
    return {"scanData": echo} if echo else {}


def _scan_data(data) -> dict:
    scan_data = data.get("scanData")
    if scan_data is None and "code" in data:
        scan_data = {"code": data["code"]}
    if not isinstance(scan_data, dict):
        raise InvalidInput(_("scanData debe ser un objeto con el código (code)."), code="invalid_data")
    return scan_data
