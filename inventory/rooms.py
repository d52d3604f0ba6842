"""Resolve a room `{agency}/{month}/{year}` from user input, with the user's right to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils.text import slugify
from django.utils.translation import gettext as _

from .exceptions import AgencyNotFound, InvalidInput, NotAMember
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


def agency_find(identifier: Any) -> Agency:
    """Find an active agency by its name (any case, with or without accents) or its slug."""
    if not isinstance(identifier, str) or not identifier.strip():
        raise InvalidInput(_("Indica la agencia."), field="agency")
    identifier = identifier.strip()
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


def sees_every_agency(user) -> bool:
    """Staff and superusers see and manage every agency."""
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def user_can_access(user, agency: Agency) -> bool:
    if sees_every_agency(user):
        return True
    return bool(user and user.is_authenticated) and agency.members.filter(pk=user.pk).exists()


def agency_for_user(user, identifier: Any) -> Agency:
    agency = agency_find(identifier)
    if not user_can_access(user, agency):
        raise NotAMember(agency)
    return agency


def room_resolve(user, *, agency: Any, month: Any, year: Any) -> Room:
    """Resolve and authorize a room; raise a domain error the user can act on."""
    found = agency_for_user(user, agency)
    return Room(agency=found, month=parse_month(month), year=parse_year(year))
