"""Reads: what a user may see, room snapshots and the event log."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import Agency, Inventory, InventoryEvent, Scan
from .rooms import Room


def agencies_visible_to(user) -> QuerySet[Agency]:
    agencies = Agency.objects.all()
    if user.is_staff or user.is_superuser:
        return agencies
    return agencies.filter(members=user, is_active=True)


def inventories_visible_to(user) -> QuerySet[Inventory]:
    inventories = inventories_visible_to_all()
    if user.is_staff or user.is_superuser:
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
    return Scan.objects.filter(inventory=inventory).count()


def events_since(inventory: Inventory, seq: int) -> QuerySet[InventoryEvent]:
    return InventoryEvent.objects.filter(inventory=inventory, seq__gt=seq).order_by("seq")


def inventory_with_count(inventory: Inventory) -> Inventory:
    return inventories_visible_to_all().get(pk=inventory.pk)


def inventories_visible_to_all() -> QuerySet[Inventory]:
    return Inventory.objects.select_related("agency").annotate(scan_count=Count("scans"))


def open_inventory_of(agency: Agency) -> Inventory | None:
    return (
        Inventory.objects.select_related("agency")
        .filter(agency=agency, status=Inventory.Status.OPEN)
        .order_by("-year", "-month")
        .first()
    )
