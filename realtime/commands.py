"""Client commands: a table from a validated message type to a service call.

`execute` takes a decoded frame (realtime.frames) of a known type: it counts it against the user's
rate limit, checks its `data` and the room it names, and runs the type's command. A command's
errors (domain, database) propagate to the consumer, which answers them with `error_reply`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError
from django.utils.translation import gettext as _

from inventory import access, periods, services
from inventory.exceptions import InvalidInput, InventoryError, error_report

from . import protocol, ratelimit, revocation
from .db import hop
from .frames import Frame

logger = logging.getLogger("realtime.consumer")

Command = Callable[[Any, dict, "str | None"], Awaitable[None]]


def _guarded(service, access):
    """The service, run after checking the socket's access in the same database hop."""

    def write(**kwargs):
        reason = revocation.access_lost(access)
        if reason is not None:
            raise revocation.AccessRevoked(reason)
        return service(**kwargs)

    return hop(write)


async def user_joined(socket, data: dict, ref: str | None) -> None:
    await socket.send_presence(ref=ref)


async def scan_added(socket, data: dict, ref: str | None) -> None:
    scan = _scan_data(data)
    with socket.expecting_own(protocol.SCAN_ADDED, scan, ref) as own:
        result = await _guarded(services.scan_record, socket.access)(
            inventory=socket.inventory,
            user=socket.user,
            code=scan.get("code"),
            scanned_at=scan.get("timestamp"),
            scan_id=scan.get("id"),
        )
        if result.created:
            own.arrives(result.scan)
            return
    # A retry of a stored scan: confirm it to this client alone, without counting again.
    message = protocol.scan_added(result.scan)
    message["data"]["replayed"] = True
    await socket.reply(message, ref)


async def scan_removed(socket, data: dict, ref: str | None) -> None:
    scan = _scan_data(data)
    with socket.expecting_own(protocol.SCAN_REMOVED, scan, ref) as own:
        result = await _guarded(services.scan_remove, socket.access)(
            inventory=socket.inventory, user=socket.user, code=scan.get("code"), scan_id=scan.get("id")
        )
        if result.removed:
            own.arrives(result.scan)
            return
    # A retry of a removal already done: confirm it to this client alone, changing nothing.
    message = protocol.scan_removed(result.scan, user=result.removed_by)
    message["data"]["replayed"] = True
    await socket.reply(message, ref)


async def inventory_completed(socket, data: dict, ref: str | None) -> None:
    # The connection names the inventory; a client's `inventoryId` (protocol v1's example says
    # "inv_123", an id of the old system) is ignored like `completedBy`.
    with socket.expecting_own(protocol.INVENTORY_COMPLETED, {}, ref) as own:
        await _guarded(services.inventory_complete, socket.access)(
            inventory=socket.inventory, user=socket.user
        )
        own.arrives(None)


async def ping(socket, data: dict, ref: str | None) -> None:
    stamp = data.get("timestamp")
    if stamp not in (None, "") and not protocol.echoable(stamp):
        raise InvalidInput(
            _("timestamp debe ser texto de hasta %(max)s caracteres o un número.")
            % {"max": protocol.ECHO_MAX_CHARS},
            field="timestamp",
        )
    await socket.reply(protocol.pong(stamp), ref)


async def resume(socket, data: dict, ref: str | None) -> None:
    since = data.get("since")
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise InvalidInput(_("since debe ser un número de secuencia (entero ≥ 0)."), code="invalid_data")
    await socket.resume(since, ref=ref)


COMMANDS: dict[str, Command] = {
    protocol.USER_JOINED: user_joined,
    protocol.SCAN_ADDED: scan_added,
    protocol.SCAN_REMOVED: scan_removed,
    protocol.INVENTORY_COMPLETED: inventory_completed,
    protocol.PING: ping,
    protocol.RESUME: resume,
}
assert set(COMMANDS) == set(protocol.CLIENT_TYPES)


async def execute(socket, frame: Frame) -> None:
    """Count the frame, check its data and room, run its command."""
    data = frame.data
    # Counted before its data is checked: a malformed message of a known type counts too.
    echo = scan_echo(frame.type, data)
    if await over_limit(socket, frame.type, frame.ref, **echo):
        return
    if not isinstance(data, dict):
        raise InvalidInput(_("El campo data debe ser un objeto."), code="invalid_data")
    logger.debug("%s -> %s in %s", socket.user.pk, frame.type, socket.room.key)
    await check_own_room(socket.room, data)
    await COMMANDS[frame.type](socket, data, frame.ref)


def error_reply(exc: Exception, frame: Frame, *, room: str, user) -> tuple[str, str, dict]:
    """The `error` (message, code, details) that answers a command that failed with `exc`."""
    if isinstance(exc, ObjectDoesNotExist):
        return _("Este inventario ya no existe."), "inventory_not_found", {}
    report = error_report(exc)
    if report is None and isinstance(exc, DatabaseError):
        report = error_report(DatabaseError())  # whatever the database failed with, nothing was saved
    if report is None:
        logger.exception("Failed to handle %s in %s", frame.type, room)
        return _("Error interno: el mensaje no se procesó."), "internal_error", {}
    if report.status == 503:  # the database or Redis is down: kept and sent again by the client
        logger.error("%s handling %s: %r", report.code, frame.type, exc)
    else:
        logger.debug("Refused %s from %s: %s (%s)", frame.type, user, report.code, report.message)
    echo = scan_echo(frame.type, frame.data) if isinstance(exc, InventoryError) else {}
    return report.message, report.code, {**report.details, **echo}


async def over_limit(socket, bucket: str, ref: str | None = None, **echo) -> bool:
    """Count one frame; True when it is over the user's limit (refused, or the socket closed)."""
    counted = await ratelimit.count_message(socket.user.pk, bucket)
    if counted.allowed:
        return False
    logger.debug("Rate limit: %s sent too many %s in %s", socket.user.pk, bucket, socket.room.key)
    if bucket == ratelimit.INVALID or counted.flooding:
        # Bad frames past the limit, or ten times the budget of a type: one last error, then
        # the socket is closed, as Centrifugo disconnects a client that floods it.
        await socket.refuse_flood(messageType=bucket, ref=ref, **echo)
        return True
    await socket.error("Rate limit exceeded", "rate_limited", ref=ref, messageType=bucket, **echo)
    return True


async def check_own_room(room, data: dict) -> None:
    """A message may name its room; if it does, it must be this connection's room."""
    agency = data.get("agency")
    # Resolved as the socket's URL was (access.agency_find); the database only for other spellings.
    wrong = (
        agency is not None
        and not access.spells_agency(room.agency, agency)
        and not await hop(access.names_agency)(room.agency, agency)
    )
    try:
        wrong = wrong or ("month" in data and periods.parse_month(data["month"]) != room.month)
        wrong = wrong or ("year" in data and periods.parse_year(data["year"]) != room.year)
    except InvalidInput:
        wrong = True
    if wrong:
        raise InvalidInput(
            _("El mensaje nombra otra sala; esta conexión es de %(room)s.") % {"room": room.key},
            code="wrong_room",
        )


def scan_echo(kind: str, data: dict) -> dict:
    """Name the scan an error answers, so a client with several in flight knows which failed."""
    if kind not in (protocol.SCAN_ADDED, protocol.SCAN_REMOVED) or not isinstance(data, dict):
        return {}
    scan_data = data.get("scanData") if isinstance(data.get("scanData"), dict) else {}
    echo = {
        key: scan_data[key]
        for key in ("code", "id")
        if isinstance(scan_data.get(key), str) and protocol.echoable(scan_data[key])
    }
    return {"scanData": echo} if echo else {}


def _scan_data(data: dict) -> dict:
    scan_data = data.get("scanData")
    if scan_data is None and "code" in data:
        scan_data = {"code": data["code"]}
    if not isinstance(scan_data, dict):
        raise InvalidInput(_("scanData debe ser un objeto con el código (code)."), code="invalid_data")
    return scan_data
