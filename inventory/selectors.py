"""Reads: what a user may see, room snapshots and the event log."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext as _

from . import access, events
from .access import Room
from .exceptions import InvalidInput, InventoryNotFound, ScanNotFound
from .models import Agency, Inventory, InventoryEvent, Scan
from .reconciliation.matching import code_key


def agencies_visible_to(user) -> QuerySet[Agency]:
    """The agencies whose rooms the user may enter: theirs, or every one with `access_every_agency`."""
    agencies = Agency.objects.all()
    if access.sees_every_agency(user):
        return agencies
    return agencies.filter(members=user, is_active=True)


def agencies_listed_for(user) -> QuerySet[Agency]:
    """The agencies the REST API lists: theirs, or every one for who may view or edit them in the admin."""
    if any(user.has_perm(f"inventory.{action}_agency") for action in ("view", "change", "delete")):
        return Agency.objects.all()
    return agencies_visible_to(user)


def inventories_visible_to(user) -> QuerySet[Inventory]:
    inventories = inventories_visible_to_all()
    if access.sees_every_agency(user):
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


def scan_data(scan: Scan) -> dict[str, Any]:
    """A scan as every JSON body shows it, REST and socket: code, user, timestamp, id, userId, match.

    Protocol v1's `scanData` (code, user, timestamp) with the scan's id (the client's idempotency
    key), who scanned it (`userId`) and how it compares with the expected list (`match`, None
    without a list). The one definition: REST, the live page, the report and the socket use it.
    """
    return scan_data_of(events.scan_facts(scan))


def scan_data_of(facts: dict[str, Any], *, match: bool = True) -> dict[str, Any]:
    """`scan_data` from a scan's facts as the event log keeps them (`events.scan_facts`).

    `match=False` leaves the match out, for a message that carries it beside the scan (`scan_added`).
    """
    data = {
        "code": facts["code"],
        "user": facts["scanned_by_name"],
        "timestamp": facts["scanned_at"],
        "id": facts["id"],
        "userId": facts["scanned_by_id"],
    }
    if match:
        data["match"] = facts.get("match")
    return data


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

    For protocol v1's DELETE without month and year.
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
