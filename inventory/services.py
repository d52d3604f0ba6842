"""The only write path. REST, WebSocket, admin and commands all change inventories here.

Every change runs in one transaction that also appends to the inventory's event log, and
schedules its broadcast for after the commit, so nothing is announced that rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from realtime import broadcast, protocol

from . import rooms
from .exceptions import (
    DuplicateScan,
    InvalidInput,
    InventoryCompleted,
    ScanIdConflict,
    ScanNotFound,
    ScanRemoved,
)
from .models import CODE_MAX_LENGTH, Inventory, InventoryEvent, RemovedScan, Scan
from .reconciliation import matching
from .reconciliation import selectors as reconciliation_selectors
from .reconciliation import services as reconciliation_services
from .rooms import Room


@dataclass(frozen=True)
class ScanResult:
    scan: Scan
    created: bool


@dataclass(frozen=True)
class RemovalResult:
    """The removed scan; `removed` is False when a retry found it removed already (nothing changed)."""

    scan: Scan
    removed: bool
    removed_by: object = None
    removed_by_name: str = ""


def clean_code(value) -> str:
    """Trim a barcode or VIN and check it is 1-64 printable characters."""
    if value is None:
        raise InvalidInput(_("Falta el código (code) del vehículo."), field="code")
    if not isinstance(value, str):
        raise InvalidInput(_("El código debe ser texto."), field="code")
    code = value.strip()
    if not code:
        raise InvalidInput(_("El código no puede estar vacío."), field="code")
    if len(code) > CODE_MAX_LENGTH:
        raise InvalidInput(
            _("El código no puede tener más de %(max)s caracteres.") % {"max": CODE_MAX_LENGTH},
            field="code",
        )
    if not code.isprintable():
        raise InvalidInput(_("El código solo puede tener caracteres imprimibles."), field="code")
    return code


def clean_scan_id(value) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidInput(_("El id del escaneo debe ser un UUID."), field="id") from None


def clean_scanned_at(value) -> datetime:
    """The client's scan time (ISO 8601), or now; never in the future beyond clock skew."""
    now = timezone.now()
    if value in (None, ""):
        return now
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
        if moment is not None and timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        if moment is not None:
            moment = moment.astimezone(UTC)  # out-of-range offsets or years fail here
    except (ValueError, OverflowError):
        moment = None
    if moment is None or not 2000 <= moment.year <= 2100:
        raise InvalidInput(
            _("La fecha del escaneo no es válida: usa ISO 8601, p. ej. 2025-01-15T10:30:00.000Z."),
            field="timestamp",
        )
    return min(moment, now)


def inventory_get_or_open(*, room: Room) -> Inventory:
    """Get the room's inventory, opening it on first use if its month can be opened."""
    existing = Inventory.objects.select_related("agency").filter(
        agency=room.agency, month=room.month, year=room.year
    )
    if (inventory := existing.first()) is not None:
        return inventory
    rooms.require_openable(room)
    try:
        inventory, _created = Inventory.objects.select_related("agency").get_or_create(
            agency=room.agency, month=room.month, year=room.year
        )
    except IntegrityError:  # opened concurrently by someone else
        inventory = Inventory.objects.select_related("agency").get(
            agency=room.agency, month=room.month, year=room.year
        )
    return inventory


def _lock(inventory: Inventory) -> Inventory:
    return Inventory.objects.select_for_update(of=("self",)).select_related("agency").get(pk=inventory.pk)


def _log_and_publish(inventory: Inventory, kind: str, build, *extra, close: bool = False) -> int:
    """Append the change to the event log with the next seq and broadcast it after commit."""
    inventory.last_seq += 1
    Inventory.objects.filter(pk=inventory.pk).update(last_seq=inventory.last_seq)
    message = build(inventory.last_seq)
    InventoryEvent.objects.create(inventory=inventory, seq=inventory.last_seq, type=kind, payload=message)
    broadcast.publish_on_commit(inventory.pk, message, *extra, close=close)
    return inventory.last_seq


def scan_record(*, inventory: Inventory, user, code, scanned_at=None, scan_id=None) -> ScanResult:
    """Count a code once in an open inventory; a retried scan id returns the stored scan."""
    try:
        return _scan_record(inventory=inventory, user=user, code=code, scanned_at=scanned_at, scan_id=scan_id)
    except DuplicateScan as exc:
        # Written after the scan's own transaction rolled back, so the refusal is kept for the report.
        reconciliation_services.duplicate_attempt_record(
            inventory=inventory,
            user=user,
            code=clean_code(code),
            first_scanned_by_name=exc.details.get("scannedBy", ""),
        )
        raise


@transaction.atomic
def _scan_record(*, inventory: Inventory, user, code, scanned_at=None, scan_id=None) -> ScanResult:
    code = clean_code(code)
    uid = clean_scan_id(scan_id)
    moment = clean_scanned_at(scanned_at)
    inventory = _lock(inventory)

    if uid is not None:
        stored = Scan.objects.select_related("scanned_by").filter(uid=uid).first()
        if stored is not None:
            if stored.inventory_id != inventory.pk or stored.code_key != matching.code_key(code):
                raise ScanIdConflict(uid)
            stored.inventory = inventory
            return ScanResult(stored, created=False)
        # A late retry of a scan removed since: it stays removed (the removal kept its id).
        removed = RemovedScan.objects.filter(uid=uid).first()
        if removed is not None:
            if removed.inventory_id != inventory.pk or removed.code_key != matching.code_key(code):
                raise ScanIdConflict(uid)
            raise ScanRemoved(removed)

    if not inventory.is_open:
        raise InventoryCompleted(inventory)
    # A code counts once whatever its letter case ("1hgcm…" typed on a phone is the scanned
    # "1HGCM…"); the inventory's lock makes this check and the insert one step.
    key = matching.code_key(code)
    first = Scan.objects.filter(inventory=inventory, code_key=key).first()
    if first is not None:
        raise DuplicateScan(first)

    # Match against the expected list as the scan is recorded: two indexed queries.
    expected, in_list = reconciliation_selectors.expected_lookup(inventory, key)
    scan = Scan.objects.create(
        inventory=inventory,
        uid=uid or uuid.uuid4(),
        code=code,
        scanned_by=user,
        scanned_by_name=protocol.display_name(user),
        scanned_at=moment,
        code_key=key,
        match=matching.classify(key, in_list=in_list, has_list=expected > 0),
    )
    _log_and_publish(
        inventory,
        InventoryEvent.Type.SCAN_ADDED,
        lambda seq: protocol.scan_added(
            scan, seq=seq, progress=reconciliation_selectors.progress_of(inventory, expected=expected)
        ),
    )
    return ScanResult(scan, created=True)


@transaction.atomic
def scan_remove(*, inventory: Inventory, user, code=None, scan_id=None) -> RemovalResult:
    """Remove a counted scan from an open inventory: the one with `scan_id` if given, else the code's.

    A retried removal of an id removed before is answered as done, and changes nothing.
    """
    uid = clean_scan_id(scan_id)
    if uid is None or code is not None:
        code = clean_code(code)
    inventory = _lock(inventory)
    if uid is not None:
        scan = Scan.objects.filter(inventory=inventory, uid=uid).first()
        if scan is None:
            removed = (
                RemovedScan.objects.select_related("removed_by").filter(inventory=inventory, uid=uid).first()
            )
            if removed is None:
                raise ScanNotFound(
                    str(uid), message=_("El escaneo %(id)s no está en este inventario.") % {"id": uid}
                )
            if code is not None and removed.code_key != matching.code_key(code):
                raise ScanIdConflict(uid)
            removed.inventory = inventory
            return RemovalResult(
                removed.as_scan(),
                removed=False,
                removed_by=removed.removed_by,
                removed_by_name=removed.removed_by_name,
            )
        if code is not None and scan.code_key != matching.code_key(code):
            raise ScanIdConflict(uid)
    if not inventory.is_open:
        raise InventoryCompleted(inventory)
    if uid is None:
        scan = Scan.objects.filter(inventory=inventory, code_key=matching.code_key(code)).first()
        if scan is None:
            raise ScanNotFound(code)
    scan.inventory = inventory
    _log_and_publish(
        inventory,
        InventoryEvent.Type.SCAN_REMOVED,
        lambda seq: protocol.scan_removed(
            scan,
            user=user,
            seq=seq,
            progress=reconciliation_selectors.progress_of(inventory, excluding_scan=scan.pk),
        ),
    )
    # The tombstone, in the removal's transaction: the id can never be stored again.
    name = protocol.display_name(user)
    RemovedScan.objects.create(
        inventory=inventory,
        uid=scan.uid,
        code=scan.code,
        code_key=scan.code_key,
        scanned_by_id=scan.scanned_by_id,
        scanned_by_name=scan.scanned_by_name,
        scanned_at=scan.scanned_at,
        match=scan.match,
        removed_by=user,
        removed_by_name=name,
        removed_at=timezone.now(),
    )
    scan.delete()
    return RemovalResult(scan, removed=True, removed_by=user, removed_by_name=name)


@transaction.atomic
def inventory_complete(*, inventory: Inventory, user) -> Inventory:
    """Complete an open inventory exactly once; every open session is told and closed."""
    inventory = _lock(inventory)
    if not inventory.is_open:
        raise InventoryCompleted(inventory)
    inventory.status = Inventory.Status.COMPLETED
    inventory.completed_at = timezone.now()
    inventory.completed_by = user
    inventory.completed_by_name = protocol.display_name(user)
    inventory.save(update_fields=["status", "completed_at", "completed_by", "completed_by_name"])
    _log_and_publish(
        inventory,
        InventoryEvent.Type.INVENTORY_COMPLETED,
        lambda seq: protocol.inventory_completed(
            inventory, seq=seq, summary=reconciliation_selectors.summary_of(inventory)
        ),
        protocol.session_terminated(inventory),
        close=True,
    )
    return inventory
