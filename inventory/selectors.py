"""Reads: what a user may see, room snapshots and the event log."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext as _

from . import rooms
from .exceptions import InvalidInput, InventoryNotFound, ScanNotFound
from .models import Agency, Inventory, InventoryEvent, Scan
from .reconciliation.matching import code_key
from .rooms import Room


def agencies_visible_to(user) -> QuerySet[Agency]:
    """The agencies whose rooms the user may enter: theirs, or every one with `access_every_agency`."""
    agencies = Agency.objects.all()
    if rooms.sees_every_agency(user):
        return agencies
    return agencies.filter(members=user, is_active=True)


def agencies_listed_for(user) -> QuerySet[Agency]:
    """The agencies the REST API lists: theirs, or every one for who may view or edit them in the admin."""
    if any(user.has_perm(f"inventory.{action}_agency") for action in ("view", "change", "delete")):
        return Agency.objects.all()
    return agencies_visible_to(user)


def inventories_visible_to(user) -> QuerySet[Inventory]:
    inventories = inventories_visible_to_all()
    if rooms.sees_every_agency(user):
        return inventories
    return inventories.filter(agency__members=user, agency__is_active=True)


def inventory_find(room: Room) -> Inventory | None:
    return (
        Inventory.objects.select_related("agency")
        .filter(agency=room.agency, month=room.month, year=room.year)
        .first()
    )


def scans_of(inventory: Inventory) -> QuerySet[Scan]:
    return Scan.objects.filter(inventory=inventory).select_related("inventory__agency")


def scan_count(inventory: Inventory) -> int:
    """How many scans the inventory holds: its counter, kept by the services (no COUNT of its scans)."""
    counted = Inventory.objects.filter(pk=inventory.pk).values_list("progress_counted", flat=True).first()
    return counted or 0


def events_since(inventory: Inventory, seq: int) -> QuerySet[InventoryEvent]:
    return InventoryEvent.objects.filter(inventory=inventory, seq__gt=seq).order_by("seq")


def inventory_with_count(inventory: Inventory) -> Inventory:
    return inventories_visible_to_all().get(pk=inventory.pk)


def inventories_visible_to_all() -> QuerySet[Inventory]:
    return Inventory.objects.select_related("agency").annotate(scan_count=F("progress_counted"))


def open_inventory_holding(agency: Agency, code: str | None, *, scan_id=None) -> Inventory:
    """The agency's open inventory that counted `code` (or the scan `scan_id`, removed or not).

    For the seed's DELETE without month and year.
    """
    open_inventories = Inventory.objects.select_related("agency").filter(
        agency=agency, status=Inventory.Status.OPEN
    )
    if scan_id is not None:
        # A retried removal finds the inventory by the removed scan's id too.
        holding = open_inventories.filter(Q(scans__uid=scan_id) | Q(removed_scans__uid=scan_id))
    else:
        holding = open_inventories.filter(scans__code_key=code_key(code))
    holding = list(holding.distinct().order_by("-year", "-month"))
    if len(holding) > 1:
        raise InvalidInput(
            _("El código %(code)s está en varios inventarios abiertos (%(rooms)s): indica month y year.")
            % {"code": code, "rooms": ", ".join(inventory.room_key for inventory in holding)},
            field="month",
        )
    if holding:
        return holding[0]
    if not open_inventories.exists():
        raise InventoryNotFound(
            _("La agencia %(agency)s no tiene un inventario abierto.") % {"agency": agency.name}
        )
    if scan_id is not None:
        raise ScanNotFound(
            str(scan_id),
            message=_("El escaneo %(id)s no está en ningún inventario abierto de %(agency)s.")
            % {"id": scan_id, "agency": agency.name},
        )
    raise ScanNotFound(
        code,
        message=_("El código %(code)s no está en ningún inventario abierto de %(agency)s.")
        % {"code": code, "agency": agency.name},
    )
