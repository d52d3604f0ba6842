"""Resolve a room `{agency}/{month}/{year}` from user input, with the user's right to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from .exceptions import AgencyNotFound, InvalidInput, InventoryError
from .models import Agency

MIN_YEAR, MAX_YEAR = 2000, 2100


@dataclass(frozen=True)
class Room:
    agency: Agency
    month: int
    year: int

    @property
    def key(self) -> str:
        return f"{self.agency.name}/{self.month}/{self.year}"


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


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(_("Indica la agencia."), field="agency")
    return value.strip()


def spells_agency(agency: Agency, identifier: Any) -> bool:
    """Whether `identifier` is the agency's name (any case) or its slug: no database needed.

    No agency's name is another's slug (`validate_agency_names_distinct`), so these two spellings
    can only mean this agency; others (no accents) need `agency_find`.
    """
    if not isinstance(identifier, str):
        return False
    text = identifier.strip()
    return text.lower() == agency.name.lower() or text == agency.slug


def agency_find(identifier: Any) -> Agency:
    """Find an active agency by its name (any case), its slug, or its name without accents, in that order.

    The one resolver of an agency named by a user: pages, sockets, REST and message bodies.
    """
    identifier = _identifier(identifier)
    if "\x00" in identifier:  # no name has one, and PostgreSQL refuses it in a query
        raise AgencyNotFound(identifier.replace("\x00", "\ufffd"))
    active = Agency.objects.filter(is_active=True)
    agency = active.filter(Q(name__iexact=identifier) | Q(slug=identifier)).first()
    if agency is None and slugify(identifier):
        # Typed without its accents ("Peugeot Queretaro"): the slug drops them too.
        agency = active.filter(slug=slugify(identifier)).first()
    if agency is None:
        raise AgencyNotFound(identifier)
    return agency


def names_agency(agency: Agency, identifier: Any) -> bool:
    """Whether `identifier` resolves to `agency`, exactly as `agency_find` resolves it."""
    if spells_agency(agency, identifier):
        return True
    try:
        return agency_find(identifier).pk == agency.pk
    except InventoryError:
        return False


# Django permissions behind the powers beyond an agency's members (superusers hold them all).
ACCESS_EVERY_AGENCY = "inventory.access_every_agency"
MANAGE_EVERY_AGENCY = "inventory.manage_every_agency"


def sees_every_agency(user) -> bool:
    """Who enters, counts in and completes every agency's rooms: the `access_every_agency` permission."""
    return bool(user and user.is_authenticated and user.has_perm(ACCESS_EVERY_AGENCY))


def manages_every_agency(user) -> bool:
    """Who is a manager in every agency (imports lists, explains variances): `manage_every_agency`."""
    return bool(user and user.is_authenticated and user.has_perm(MANAGE_EVERY_AGENCY))


def user_can_access(user, agency: Agency) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    # Membership first: one query answers for counters, where the permission would load every
    # permission of the user and their groups (two queries) on each socket's join and write.
    if agency.is_active and agency.members.filter(pk=user.pk).exists():
        return True
    return sees_every_agency(user)


def agency_for_user(user, identifier: Any) -> Agency:
    """The agency, if the user may enter it; else the same answer as an agency that does not exist."""
    agency = agency_find(identifier)
    if not user_can_access(user, agency):
        # Like GitHub's private repositories: an outsider learns nothing, not even that it exists.
        raise AgencyNotFound(_identifier(identifier))
    return agency


def room_resolve(user, *, agency: Any, month: Any, year: Any) -> Room:
    """Resolve and authorize a room; raise a domain error the user can act on."""
    found = agency_for_user(user, agency)
    return Room(agency=found, month=parse_month(month), year=parse_year(year))


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
