"""A socket's join, step by step: who may, the room, a place in it, the relay, then what it missed.

Each step that turns the socket away raises `Refused` (realtime.refusals); a database or Redis
failure propagates as such, and the consumer leaves whatever was taken and says so. Nothing a
client can see happens before the last check: the room hears of a new person, and the socket gets
the presence and its backlog, only once it is in the room's streams with its access read again.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError

from inventory import access, services
from inventory.exceptions import InventoryError

from . import broadcast, clock, metrics, protocol, ratelimit, replay, revocation
from .conf import realtime_settings
from .db import hop
from .fanout import get_fanout, room_stream, user_stream
from .membership import RoomMembership
from .presence import Connection
from .refusals import Refused, completed, live_down, place_refused, room_refused, unauthenticated

logger = logging.getLogger("realtime.consumer")


@hop
def _open_room(user, agency, month, year):
    room = access.room_resolve(user, agency=agency, month=month, year=year)
    return room, services.inventory_get_or_open(room=room)


@hop
def _state_and_access(inventory_id, socket_access):
    """The inventory, and why the socket lost its access since it was authorized (None: it did not)."""
    return replay.inventory_state.func(inventory_id), revocation.access_lost(socket_access)


async def join(socket) -> None:
    """Join `socket` (an `InventoryConsumer`, accepted) to the room of its URL, or raise `Refused`.

    Sets the socket's `room`, `inventory`, `access`, `membership`, `streams`, `group_name`,
    `last_seq` and `joined` as each is taken, so that leaving gives back exactly what was.
    """
    scope, user = socket.scope, socket.user
    if scope.get("database_unavailable"):
        raise DatabaseError("the database was unreachable while authenticating")
    if user is None or not user.is_authenticated:
        raise Refused(unauthenticated())
    refusal = await ratelimit.connect_refusal(user.pk)
    if refusal is not None:
        raise Refused(refusal)
    kwargs = scope["url_route"]["kwargs"]
    try:
        socket.room, socket.inventory = await _open_room(
            user, kwargs["agency"], kwargs["month"], kwargs["year"]
        )
    except InventoryError as exc:
        raise Refused(room_refused(exc)) from None
    if not socket.inventory.is_open:
        raise Refused(completed(socket.inventory))

    socket.group_name = room_stream(socket.inventory.pk)
    socket.own.user_id = str(user.pk)
    connection = Connection(
        connection_id=socket.channel_name,
        user_id=str(user.pk),
        user_name=protocol.display_name(user),
        since=clock.now(),
        instance=metrics.INSTANCE_ID,
    )
    socket.access = revocation.SocketAccess.of(scope, user, socket.room.agency)
    socket.membership, admission = await RoomMembership.join(
        socket.inventory,
        connection,
        room_key=socket.room.key,
        limit=realtime_settings.MAX_CONNECTIONS_PER_ROOM,
        user_limit=realtime_settings.MAX_CONNECTIONS_PER_USER,
    )
    if not admission.joined:
        raise Refused(place_refused(admission.refused))
    await _join_streams(socket)
    metrics.local.connected(connection.user_id)
    metrics.ensure_reporter()

    # Read the state only now that we are in the streams: whatever commits later reaches us,
    # a revocation included; one that committed since the room was authorized is caught here.
    socket.inventory, lost = await _state_and_access(socket.inventory.pk, socket.access)
    if lost is not None:
        logger.info("Refusing %s of user %s: %s", socket.channel_name, user.pk, lost)
        raise Refused(revocation.refusal_for(lost, agency_name=socket.room.agency.name), grace=False)
    if not socket.inventory.is_open:
        raise Refused(completed(socket.inventory))
    since = replay.since_in_query(scope)
    socket.last_seq = socket.inventory.last_seq
    # Read what a resuming client missed before greeting it, so that a database failure is
    # a clean refusal rather than a socket dropped halfway through its join.
    backlog = await replay.backlog(socket.inventory, since) if since is not None else None
    logger.debug("%s joined %s (%s)", connection.user_name, socket.room.key, socket.channel_name)
    if admission.first:  # a user's further sockets, or a quick return, are no news to the room
        await broadcast.apublish(socket.inventory.pk, protocol.user_joined(socket.inventory, user))
    await socket.send_presence()
    if backlog is not None:
        await socket.send_backlog(backlog)


async def _join_streams(socket) -> None:
    """Join the room's stream and the user's; without the live relay there is no live room."""
    fanout = get_fanout()
    socket.streams = (socket.group_name, user_stream(socket.user.pk))
    try:
        for stream in socket.streams:
            await fanout.join(stream, socket)
    except Exception as exc:
        logger.error("Live relay unavailable, refusing %s: %r", socket.channel_name, exc)
        socket.leave_streams()
        await socket.membership.abandon()
        raise Refused(live_down()) from exc
    socket.joined = True
