"""Fill the run's inventories with scans before it starts, as if they had been counted for hours.

Test scaffolding like the accounts: written in bulk through the ORM (5,000 scans through the
services would take a minute per room), but leaving what the services would have left: every
scan with its `scan_added` event and seq, and the inventory's progress counters recounted from
the rows by the one function that defines them (reconciliation.services.progress_refresh).
"""

from __future__ import annotations

import time
import uuid

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from inventory import access, formats
from inventory import events as domain_events
from inventory.models import Agency, Inventory, InventoryEvent, Scan
from inventory.reconciliation import matching
from inventory.reconciliation import selectors as reconciliation_selectors
from inventory.reconciliation import services as reconciliation_services
from inventory.services import inventory_get_or_open

from .accounts import LoadtestAccounts

# Prefilled codes never meet the run's published ones (LT-...).
PREFILL_PREFIX = "PF"
BATCH_SIZE = 2000


def prefill_code(run_id: str, room_index: int, number: int) -> str:
    return f"{PREFILL_PREFIX}-{run_id}-{room_index:03d}-{number:05d}"


def inventories_prefill(*, accounts: LoadtestAccounts, scans_per_room: int) -> float:
    """Put `scans_per_room` scans in every room's inventory (opening it); the seconds it took."""
    started = time.perf_counter()
    User = get_user_model()
    agencies = Agency.objects.in_bulk(accounts.agency_ids)
    for plan, agency_id in zip(accounts.rooms, accounts.agency_ids, strict=True):
        # The room's last client scanned them: the publisher (client 0) is one of the watchers.
        user = User.objects.get(auth_token__key=plan.tokens[-1])
        room = access.Room(agency=agencies[agency_id], month=plan.month, year=plan.year)
        _fill(inventory_get_or_open(room=room), user, accounts.run_id, plan.index, scans_per_room)
    if connection.vendor == "postgresql":
        # Counted for hours, the tables' statistics would know these rows: no plan from stale ones.
        with connection.cursor() as cursor:
            for model in (Scan, InventoryEvent):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return time.perf_counter() - started


@transaction.atomic
def _fill(inventory: Inventory, user, run_id: str, room_index: int, count: int) -> None:
    inventory = Inventory.objects.select_for_update().select_related("agency").get(pk=inventory.pk)
    now = timezone.now()
    name = formats.display_name(user)
    has_list = inventory.progress_expected > 0
    scans = []
    for number in range(count):
        code = prefill_code(run_id, room_index, number)
        key = matching.code_key(code)
        scans.append(
            Scan(
                inventory=inventory,
                uid=uuid.uuid4(),
                code=code,
                code_key=key,
                match=matching.classify(key, in_list=False, has_list=has_list),
                scanned_by=user,
                scanned_by_name=name,
                scanned_at=now,
            )
        )
    Scan.objects.bulk_create(scans, batch_size=BATCH_SIZE)
    # Each event carries the room's figures after its scan, as a live scan's does.
    fields = reconciliation_selectors.PROGRESS_FIELDS.values()
    counters = {field: getattr(inventory, field) for field in fields}
    events = []
    for scan in scans:
        for field in reconciliation_selectors.counters_of_match(scan.match):
            counters[field] += 1
        seq = inventory.last_seq + len(events) + 1
        progress = reconciliation_selectors.progress_figures(counters)
        events.append(
            InventoryEvent(
                inventory=inventory,
                seq=seq,
                type=InventoryEvent.Type.SCAN_ADDED,
                facts=domain_events.scan_added_facts(scan, progress=progress),
            )
        )
    InventoryEvent.objects.bulk_create(events, batch_size=BATCH_SIZE)
    Inventory.objects.filter(pk=inventory.pk).update(last_seq=inventory.last_seq + count)
    reconciliation_services.progress_refresh(inventory=inventory)
