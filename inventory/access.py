"""Who may enter which agency; a room `{agency}/{month}/{year}` resolved from user input, with that right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils.text import slugify
from django.utils.translation import gettext as _

from .exceptions import AgencyNotFound, InvalidInput, InventoryError
from .models import Agency
from .periods import parse_month, parse_year


@dataclass(frozen=True)
class Room:
    agency: Agency
    month: int
    year: int

    @property
    def key(self) -> str:
        return f"{self.agency.name}/{self.month}/{self.year}"


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
