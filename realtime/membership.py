"""A socket's place in its room's presence: join, heartbeat, leave, the departure grace period.

`RoomMembership` keeps one connection in the presence store (realtime.presence) and tells the room
who joined and who left. When the store is down at join, the socket gets a `NullMembership`: it
counts like any other, unlisted, and announces nothing (as Baserow's PresenceHandler and
NullPresenceHandler) until a heartbeat finds the store again and takes its place quietly.

Redis keeps nothing on disk: after a restart every entry is gone. Each heartbeat therefore puts
back a connection the store lost, within the room's and the user's limits (a socket the limits
refuse then is closed with the refusal), and without a word to the room: it never left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from . import broadcast, clock, protocol
from .conf import realtime_settings
from .presence import Admission, Connection, get_presence, summarize_users
from .relaying import later

logger = logging.getLogger("realtime.consumer")

# How long a closing socket waits for the presence store to take its entry out. A store that does
# not answer (down, paused) would otherwise hold every closing socket for the Redis client's
# timeouts (5 s, and a retry) and daphne kills the application instances that outlive its close
# timeout; an entry left behind expires within two heartbeats, and the next join or heartbeat in
# the room hands it over to be announced as gone.
LEAVE_TIMEOUT = 1.0


class RoomMembership:
    """One connection listed in the room's presence."""

    listed = True

    def __init__(
        self, inventory, connection: Connection, room_key: str = "", *, limit: int = 0, user_limit: int = 0
    ):
        self.inventory = inventory
        self.connection = connection
        self.room_key = room_key
        # The limits the place was taken within, and taken again within after the store lost it.
        self.limit = limit
        self.user_limit = user_limit
        self.left = False

    @classmethod
    async def join(
        cls, inventory, connection: Connection, *, room_key: str = "", limit: int, user_limit: int
    ) -> tuple[RoomMembership | NullMembership, Admission]:
        """Take a place in the room (within its limits); a `NullMembership` when presence is down."""
        try:
            admission = await get_presence().join(
                inventory.pk, connection, limit=limit, user_limit=user_limit
            )
        except Exception as exc:  # presence store down: let people count, unlisted
            logger.warning("Presence unavailable, joining without it: %r", exc)
            unlisted = NullMembership(inventory, connection, room_key, limit=limit, user_limit=user_limit)
            return unlisted, Admission(True)
        membership = cls(inventory, connection, room_key, limit=limit, user_limit=user_limit)
        if not admission.joined:
            membership.left = True
        await membership.announce_departures(admission.expired)
        return membership, admission

    async def users(self) -> list[dict[str, Any]]:
        return summarize_users(await get_presence().connections(self.inventory.pk))

    async def heartbeat(self) -> str:
        """Keep this connection listed; tell the room about users of vanished instances.

        Returns the limit that refused the place the store had lost (`room_full`, `user_limit`),
        '' while the connection keeps it.
        """
        if self.left:
            return ""
        admission = await get_presence().refresh(
            self.inventory.pk, self.connection, limit=self.limit, user_limit=self.user_limit
        )
        if not admission.joined:
            self.left = True
        await self.announce_departures(admission.expired)
        return admission.refused

    async def leave(self, *, grace: bool = True) -> None:
        """Leave the room once; its last connection tells the room, after the grace period if any."""
        if self.left:
            return
        self.left = True
        seconds = realtime_settings.presence_grace_seconds if grace else 0
        grace_until = clock.now() + seconds if seconds else 0
        user_id = self.connection.user_id
        try:
            last = await asyncio.wait_for(
                get_presence().leave(
                    self.inventory.pk, self.connection.connection_id, user_id=user_id, grace_until=grace_until
                ),
                LEAVE_TIMEOUT,
            )
        except Exception as exc:  # TimeoutError included: the entry expires on its own
            logger.warning("Could not leave %s cleanly: %r", self.room_key, exc)
            return
        if last and grace_until:
            later(announce_departure(self.inventory, self.connection, grace_until))
        elif last:
            try:
                await asyncio.wait_for(self._announce_left(self.connection), LEAVE_TIMEOUT)
            except Exception as exc:  # Redis went away meanwhile: the leave itself is done
                logger.warning(
                    "Could not tell %s that %s left: %r", self.room_key, self.connection.user_name, exc
                )

    async def abandon(self) -> None:
        """Give the place back without a word to the room (the join did not complete)."""
        if self.left:
            return
        self.left = True
        try:
            await asyncio.wait_for(
                get_presence().leave(self.inventory.pk, self.connection.connection_id), LEAVE_TIMEOUT
            )
        except Exception as exc:
            logger.warning("Could not leave presence: %r", exc)

    async def announce_departures(self, expired) -> None:
        """Tell the room who left with a vanished instance: users whose every connection expired."""
        if not expired:
            return
        try:
            present = {conn.user_id for conn in await get_presence().connections(self.inventory.pk)}
            gone = {conn.user_id: conn for conn in expired if conn.user_id not in present}
            for conn in gone.values():
                logger.debug(
                    "%s vanished from %s (instance %s)", conn.user_name, self.room_key, conn.instance
                )
                await self._announce_left(conn)
        except Exception as exc:
            logger.warning("Could not announce who left %s: %r", self.room_key, exc)

    async def _announce_left(self, conn: Connection) -> None:
        await broadcast.apublish(
            self.inventory.pk,
            protocol.user_left(self.inventory, user_id=conn.user_id, user_name=conn.user_name),
        )


class NullMembership(RoomMembership):
    """A socket that joined while the presence store was down: it counts, unlisted, and announces
    nothing, until a heartbeat takes its place in the store again (then it is a `RoomMembership`)."""

    listed = False

    async def users(self) -> list[dict[str, Any]]:
        return []

    async def heartbeat(self) -> str:
        """Take the place the join could not, quietly (the room heard `user_joined` at connect)."""
        if self.left:
            return ""
        try:
            admission = await get_presence().join(
                self.inventory.pk, self.connection, limit=self.limit, user_limit=self.user_limit
            )
        except Exception as exc:  # still down: stay unlisted, try again next heartbeat
            logger.debug("Presence still unavailable for %s: %r", self.connection.connection_id, exc)
            return ""
        if not admission.joined:
            self.left = True
            return admission.refused
        self.__class__ = RoomMembership  # listed from now on: leaves and departures as any other
        await self.announce_departures(admission.expired)
        return ""

    async def leave(self, *, grace: bool = True) -> None:
        self.left = True

    async def abandon(self) -> None:
        self.left = True

    async def announce_departures(self, expired) -> None:
        return None


async def announce_departure(inventory, connection: Connection, grace_until: float) -> None:
    """After the grace period, tell the room the user left, unless they came back meanwhile."""
    await clock.sleep(max(0.0, grace_until - clock.now()))
    try:
        if await get_presence().settle(inventory.pk, connection.user_id, grace_until):
            await broadcast.apublish(
                inventory.pk,
                protocol.user_left(inventory, user_id=connection.user_id, user_name=connection.user_name),
            )
    except Exception as exc:
        logger.warning("Could not announce that %s left: %r", connection.user_name, exc)
