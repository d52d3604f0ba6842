"""Months and years as users write them, and which months' inventories can be opened today."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from .exceptions import InvalidInput

if TYPE_CHECKING:
    from .access import Room

MIN_YEAR, MAX_YEAR = 2000, 2100


def parse_month(value: Any) -> int:
    """Accept 10, "10" or "03"; refuse anything that is not a month."""
    month = _parse_int(value)
    if month is None or not 1 <= month <= 12:
        raise InvalidInput(_("El mes debe ser un número del 1 al 12."), field="month")
    return month


def parse_year(value: Any) -> int:
    year = _parse_int(value)
    if year is None or not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(
            _("El año debe ser un número entre %(min)s y %(max)s.") % {"min": MIN_YEAR, "max": MAX_YEAR},
            field="year",
        )
    return year


def _parse_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return ascii_int(value.strip(), max_digits=4)
    return None


def ascii_int(text: str, *, max_digits: int = 18) -> int | None:
    """The number written in ASCII digits, else None ("²" and "١" are digits to str.isdigit, not to int)."""
    if text.isascii() and text.isdigit() and len(text) <= max_digits:
        return int(text)
    return None


# Which months can be opened: one rule for pages, sockets and REST (existing inventories stay readable).


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def openable_months(today: date | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """The first and last (month, year) whose inventory may be opened today."""
    today = today or timezone.localdate()
    now = _month_index(today.year, today.month)
    first = now - settings.INVENTORY_OPEN_MONTHS_BACK
    last = now + settings.INVENTORY_OPEN_MONTHS_AHEAD
    return (first % 12 + 1, first // 12), (last % 12 + 1, last // 12)


def room_openable(room: Room, today: date | None = None) -> bool:
    (first_month, first_year), (last_month, last_year) = openable_months(today)
    index = _month_index(room.year, room.month)
    return _month_index(first_year, first_month) <= index <= _month_index(last_year, last_month)


def require_openable(room: Room) -> None:
    """Refuse to open an inventory outside the months that can be opened, saying which they are."""
    if room_openable(room):
        return
    (first_month, first_year), (last_month, last_year) = openable_months()
    raise InvalidInput(
        _("No se puede abrir el inventario de %(room)s: solo se abren los meses de %(first)s a %(last)s.")
        % {
            "room": room.key,
            "first": f"{first_month}/{first_year}",
            "last": f"{last_month}/{last_year}",
        },
        code="month_not_openable",
        field="month",
    )


def openable_months_newest_first(today: date | None = None) -> list[tuple[int, int]]:
    """Every (month, year) that can be opened today, the latest first (tools pick their rooms here)."""
    (first_month, first_year), (last_month, last_year) = openable_months(today)
    first, last = _month_index(first_year, first_month), _month_index(last_year, last_month)
    return [(index % 12 + 1, index // 12) for index in range(last, first - 1, -1)]
