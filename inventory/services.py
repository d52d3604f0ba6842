"""The only write path. REST, WebSocket, admin and commands all change inventories here.

Every change runs in one transaction that also records its event (inventory.events: a row of the
inventory's log, handed to the subscribers after the commit), so nothing is announced that rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from . import events, formats, periods, writes
from .access import Room
from .exceptions import (
    DuplicateScan,
    InvalidInput,
    InventoryCompleted,
    ScanIdConflict,
    ScanNotFound,
    ScanRemoved,
)
from .locks import take
from .models import CODE_MAX_LENGTH, ExpectedVehicle, Inventory, RemovedScan, Scan, ScanMatch
from .reconciliation import matching
from .reconciliation import selectors as reconciliation_selectors
from .reconciliation import services as reconciliation_services


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
    periods.require_openable(room)
    try:
        inventory, _created = Inventory.objects.select_related("agency").get_or_create(
            agency=room.agency, month=room.month, year=room.year
        )
    except IntegrityError:  # opened concurrently by someone else
        inventory = Inventory.objects.select_related("agency").get(
            agency=room.agency, month=room.month, year=room.year
        )
    return inventory


def _count(
    inventory: Inventory, match: str, step: int, *, distinct_found: bool = True
) -> tuple[writes.Statement, dict[str, int]]:
    """Count (1) or uncount (-1) a scan of this match: the counters' update and the new figures.

    `inventory` is the one `take` read back under the lock; its counters are advanced in memory.
    """
    fields = reconciliation_selectors.counters_of_match(match)
    if not distinct_found:  # another scan of the code still finds it
        fields = tuple(field for field in fields if field != "progress_found")
    for field in fields:
        setattr(inventory, field, getattr(inventory, field) + step)
    progress = reconciliation_selectors.progress_figures(
        {field: getattr(inventory, field) for field in reconciliation_selectors.PROGRESS_FIELDS.values()}
    )
    return writes.increment(inventory, dict.fromkeys(fields, step)), progress


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
    # A code counts once whatever its letter case ("1hgcm…" typed on a phone is the scanned
    # "1HGCM…"); the inventory's lock makes this check and the insert one step.
    key = matching.code_key(code)
    inventory = take(inventory)
    # Every check in one indexed read, after the lock: the id stored or removed, the code counted,
    # the code in the expected list.
    checks = _scan_checks(inventory, uid=uid, key=key)

    if checks["stored"] is not None:
        stored = Scan.objects.select_related("scanned_by").get(pk=checks["stored"])
        if stored.inventory_id != inventory.pk or stored.code_key != key:
            raise ScanIdConflict(uid)
        stored.inventory = inventory
        transaction.set_rollback(True)  # nothing changed: give the seq back
        return ScanResult(stored, created=False)
    if checks["removed"] is not None:
        # A late retry of a scan removed since: it stays removed (the removal kept its id).
        removed = RemovedScan.objects.get(pk=checks["removed"])
        if removed.inventory_id != inventory.pk or removed.code_key != key:
            raise ScanIdConflict(uid)
        raise ScanRemoved(removed)

    if not inventory.is_open:
        raise InventoryCompleted(inventory)
    if checks["first"] is not None:
        raise DuplicateScan(Scan.objects.get(pk=checks["first"]))

    scan = Scan(
        inventory=inventory,
        uid=uid or uuid.uuid4(),
        code=code,
        scanned_by=user,
        scanned_by_name=formats.display_name(user),
        scanned_at=moment,
        code_key=key,
        match=matching.classify(key, in_list=checks["listed"], has_list=inventory.progress_expected > 0),
    )
    counters, progress = _count(inventory, scan.match, +1)
    (pk,) = events.record(
        inventory,
        events.SCAN_ADDED,
        counters,
        writes.insert(scan, returning_pk=True),
        **events.scan_added_facts(scan, progress=progress),
    )
    writes.saved(scan, pk)
    return ScanResult(scan, created=True)


def _scan_checks(inventory: Inventory, *, uid, key: str) -> dict:
    """What a new scan must be checked against, in one query: the pks of the scan and the removed
    scan with its id (in any inventory), of the scan of its code here, and whether the books list it.

    Plain SQL, the same on PostgreSQL and SQLite: the ORM's four subqueries cost ~3 ms of Python to
    build, more than the rest of the write (tools/bench/write_path.py --profile).
    """
    quote, table = connection.ops.quote_name, (lambda model: connection.ops.quote_name(model._meta.db_table))
    uid = Scan._meta.get_field("uid").get_db_prep_value(uid, connection) if uid is not None else None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT {quote('id')} FROM {table(Scan)} WHERE {quote('uid')} = %s), "
            f"(SELECT {quote('id')} FROM {table(RemovedScan)} WHERE {quote('uid')} = %s), "
            f"(SELECT {quote('id')} FROM {table(Scan)} WHERE {quote('inventory_id')} = %s "
            f"AND {quote('code_key')} = %s ORDER BY {quote('id')} LIMIT 1), "
            f"EXISTS (SELECT 1 FROM {table(ExpectedVehicle)} WHERE {quote('inventory_id')} = %s "
            f"AND {quote('code_key')} = %s)",
            [uid, uid, inventory.pk, key, inventory.pk, key],
        )
        stored, removed, first, listed = cursor.fetchone()
    return {"stored": stored, "removed": removed, "first": first, "listed": bool(listed)}


@transaction.atomic
def scan_remove(*, inventory: Inventory, user, code=None, scan_id=None) -> RemovalResult:
    """Remove a counted scan from an open inventory: the one with `scan_id` if given, else the code's.

    A retried removal of an id removed before is answered as done, and changes nothing.
    """
    uid = clean_scan_id(scan_id)
    if uid is None or code is not None:
        code = clean_code(code)
    inventory = take(inventory)
    # The scan with every other scan of its code (normally none: a code counts once), in one read.
    if uid is not None:
        its_code = Scan.objects.filter(inventory=inventory, uid=uid).values("code_key")
        same_code = list(Scan.objects.filter(inventory=inventory, code_key__in=its_code))
        scan = next((candidate for candidate in same_code if candidate.uid == uid), None)
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
            transaction.set_rollback(True)  # nothing changed: give the seq back
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
        same_code = list(Scan.objects.filter(inventory=inventory, code_key=matching.code_key(code)))
        if not same_code:
            raise ScanNotFound(code)
        scan = same_code[0]
    scan.inventory = inventory
    still_found = any(other.pk != scan.pk and other.match == ScanMatch.EXPECTED for other in same_code)
    counters, progress = _count(inventory, scan.match, -1, distinct_found=not still_found)
    name = formats.display_name(user)
    events.record(
        inventory,
        events.SCAN_REMOVED,
        counters,
        # The tombstone, in the removal's transaction: the id can never be stored again.
        writes.insert(RemovedScan.of(scan, removed_by=user, removed_by_name=name)),
        writes.delete(scan),
        **events.scan_removed_facts(scan, user=user, progress=progress),
    )
    writes.deleted(scan)
    return RemovalResult(scan, removed=True, removed_by=user, removed_by_name=name)


@transaction.atomic
def inventory_complete(*, inventory: Inventory, user) -> Inventory:
    """Complete an open inventory exactly once; every open session is told and closed."""
    completed = take(
        inventory,
        only_open=True,
        status=Inventory.Status.COMPLETED,
        completed_at=timezone.now(),
        completed_by_id=user.pk if getattr(user, "is_authenticated", False) else None,
        completed_by_name=formats.display_name(user),
    )
    if completed is None:
        raise InventoryCompleted(Inventory.objects.get(pk=inventory.pk))
    summary = reconciliation_selectors.progress_figures(
        {field: getattr(completed, field) for field in reconciliation_selectors.PROGRESS_FIELDS.values()}
    )
    # Its subscribers tell every open session and close it (realtime.publisher).
    events.record(
        completed, events.INVENTORY_COMPLETED, **events.inventory_completed_facts(completed, summary=summary)
    )
    return completed
