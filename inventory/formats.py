"""How the domain writes its values for people and JSON: moments, user names, the room's name.

The live protocol (realtime.protocol), the REST API and the report use these, so a moment or a
name reads the same everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def timestamp(moment: datetime | None = None) -> str:
    """Format a moment (now by default) as protocol v1 does: ISO 8601 UTC with milliseconds and `Z`."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def timestamp_from_epoch(seconds: float) -> str:
    return timestamp(datetime.fromtimestamp(seconds, UTC))


def display_name(user) -> str:
    """The name shown for a user: the full name, else the username; empty for no user."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def user_id(user) -> str | None:
    """A user's id as JSON text; None for no user."""
    return str(user.pk) if user else None


def room_fields(inventory) -> dict[str, Any]:
    """Name the room as protocol v1 does: agency name, month as a string, year as an integer."""
    return {"agency": inventory.agency.name, "month": str(inventory.month), "year": inventory.year}
