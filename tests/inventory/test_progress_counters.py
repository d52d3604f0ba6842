"""The progress counters kept on the inventory: always what a recount of the rows says, at a constant cost."""

import importlib
import random
import uuid

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import services
from inventory.access import Room
from inventory.exceptions import InventoryError
from inventory.models import Inventory, InventoryEvent, Scan, ScanMatch
from inventory.reconciliation import selectors
from inventory.reconciliation import services as reconciliation

from .reconciliation_helpers import csv_bytes

pytestmark = pytest.mark.django_db

HEADER = ["No. de serie", "No. Stock"]
BOOK_CODES = ["1HGCM82633A004352", "1M8GDM9AXKP042788", "11111111111111111", "EXP-BARCODE-4", "EXP-5"]
# In the books or not, valid VINs, a suspect VIN (flagged), plain barcodes.
CODES = [*BOOK_CODES, "1HGCM82633A004353", "NOT-IN-BOOKS-1", "NOT-IN-BOOKS-2", "ZZ-9"]
TRANSACTION_SQL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK", "BEGIN", "COMMIT")


@pytest.fixture
def inventory(alfa):
    return services.inventory_get_or_open(room=Room(alfa, 10, 2025))


def counters(inventory) -> dict[str, int]:
    fields = selectors.PROGRESS_FIELDS.values()
    return Inventory.objects.filter(pk=inventory.pk).values(*fields).get()


def statements(context) -> list[str]:
    return [q["sql"] for q in context.captured_queries if not q["sql"].upper().startswith(TRANSACTION_SQL)]


def test_the_counters_equal_a_recount_after_any_sequence_of_adds_removals_and_imports(inventory, ana, luis):
    chance = random.Random(12)
    ids: list[uuid.UUID] = []
    for step in range(300):
        action = chance.random()
        try:
            if action < 0.55:
                code = chance.choice(CODES)
                code = code.lower() if chance.random() < 0.3 else code  # the same code in another case
                scan_id = chance.choice(ids) if ids and chance.random() < 0.2 else uuid.uuid4()  # retries
                ids.append(scan_id)
                services.scan_record(
                    inventory=inventory, user=chance.choice([ana, luis]), code=code, scan_id=scan_id
                )
            elif action < 0.85:
                if chance.random() < 0.5 and ids:
                    services.scan_remove(inventory=inventory, user=ana, scan_id=chance.choice(ids))
                else:
                    services.scan_remove(inventory=inventory, user=ana, code=chance.choice(CODES))
            elif action < 0.97:
                books = chance.sample(BOOK_CODES, chance.randint(1, len(BOOK_CODES)))
                rows = [HEADER, *[[code, f"S{n}"] for n, code in enumerate(books)]]
                reconciliation.expected_import_file(
                    inventory=inventory, upload=csv_bytes(rows), filename="l.csv"
                )
            else:
                reconciliation.expected_clear(inventory=inventory)
        except InventoryError:
            pass  # a duplicate, a scan not found: refused, and nothing changed
        assert counters(inventory) == selectors.progress_recount(inventory.pk), f"step {step}"
    figures = selectors.progress_of(inventory)
    assert figures == selectors.progress_figures(selectors.progress_recount(inventory.pk))
    assert figures["counted"] == Scan.objects.filter(inventory=inventory).count() > 0
    # The figures every scan message carried are the counters of their moment: the last one is today's.
    last = InventoryEvent.objects.filter(inventory=inventory).order_by("-seq").first().facts
    assert last["progress"] == figures


def test_a_code_scanned_twice_in_different_case_before_the_rule_stays_found_until_its_last_scan(
    inventory, ana
):
    reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes([HEADER, ["EXP-5", "S1"]]), filename="l.csv"
    )
    for code in ("EXP-5", "exp-5"):  # rows from before a code counted once whatever its case
        Scan.objects.create(
            inventory=inventory,
            code=code,
            code_key="EXP-5",
            match=ScanMatch.EXPECTED,
            scanned_by=ana,
            scanned_by_name="Ana",
            scanned_at=timezone.now(),
        )
    reconciliation.progress_refresh(inventory=inventory)
    assert selectors.progress_of(inventory)["found"] == 1
    services.scan_remove(inventory=inventory, user=ana, code="exp-5")
    figures = selectors.progress_of(inventory)
    assert (figures["counted"], figures["found"]) == (1, 1)
    services.scan_remove(inventory=inventory, user=ana, code="EXP-5")
    assert selectors.progress_of(inventory)["found"] == 0
    assert counters(inventory) == selectors.progress_recount(inventory.pk)


def test_a_scans_write_costs_the_same_in_a_full_inventory_and_counts_no_rows(inventory, alfa, ana):
    reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes([HEADER, *[[f"B{n}", ""] for n in range(50)]]), filename="l.csv"
    )
    full = services.inventory_get_or_open(room=Room(alfa, 11, 2025))
    reconciliation.expected_import_file(
        inventory=full, upload=csv_bytes([HEADER, *[[f"B{n}", ""] for n in range(50)]]), filename="l.csv"
    )
    for n in range(60):
        services.scan_record(inventory=full, user=ana, code=f"B{n}")
    costs = {}
    for name, room in (("empty", inventory), ("full", full)):
        with CaptureQueriesContext(connection) as added:
            services.scan_record(inventory=room, user=ana, code="B7X")
        with CaptureQueriesContext(connection) as removed:
            services.scan_remove(inventory=room, user=ana, code="B7X")
        with CaptureQueriesContext(connection) as completed:
            services.inventory_complete(inventory=room, user=ana)
        costs[name] = [statements(added), statements(removed), statements(completed)]
        for sql in [*costs[name][0], *costs[name][1], *costs[name][2]]:
            assert "COUNT(" not in sql.upper(), sql  # nothing counts the inventory's rows
    assert [len(s) for s in costs["empty"]] == [len(s) for s in costs["full"]]
    # Lock + seq, the checks, then the writes: the scan (or its tombstone and delete), the counters
    # and the event, one statement on PostgreSQL (inventory/writes.py); completion: one update and
    # its event. SQLite has no data-modifying CTE and runs the same writes one by one.
    if connection.vendor == "postgresql":
        assert [len(s) for s in costs["full"]] == [3, 3, 2], costs["full"]
        assert all(s[2].startswith("WITH ") for s in costs["full"][:2]), costs["full"]
    else:
        assert [len(s) for s in costs["full"]] == [5, 6, 2], costs["full"]


def test_a_retried_scan_changes_nothing_and_leaves_no_gap_in_the_log(inventory, ana):
    scan_id = uuid.uuid4()
    services.scan_record(inventory=inventory, user=ana, code="RETRY-1", scan_id=scan_id)
    again = services.scan_record(inventory=inventory, user=ana, code="RETRY-1", scan_id=scan_id)
    assert again.created is False
    services.scan_remove(inventory=inventory, user=ana, scan_id=scan_id)
    assert services.scan_remove(inventory=inventory, user=ana, scan_id=scan_id).removed is False
    services.scan_record(inventory=inventory, user=ana, code="RETRY-2")
    inventory.refresh_from_db()
    seqs = list(InventoryEvent.objects.filter(inventory=inventory).values_list("seq", flat=True))
    assert seqs == [1, 2, 3] and inventory.last_seq == 3


def test_the_data_migration_counts_the_existing_inventories(inventory, alfa, ana):
    reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes([HEADER, ["EXP-5", ""], ["EXP-6", ""]]), filename="l.csv"
    )
    for code in ("EXP-5", "1HGCM82633A004353", "OTHER"):
        services.scan_record(inventory=inventory, user=ana, code=code)
    other = services.inventory_get_or_open(room=Room(alfa, 11, 2025))
    services.scan_record(inventory=other, user=ana, code="OTHER")
    expected = {room.pk: counters(room) for room in (inventory, other)}
    Inventory.objects.update(**dict.fromkeys(selectors.PROGRESS_FIELDS.values(), 0))  # as before 0006

    migration = importlib.import_module("inventory.migrations.0006_inventory_progress_counters")
    migration.count_progress(apps, None)

    assert {room.pk: counters(room) for room in (inventory, other)} == expected
    assert expected[inventory.pk] == {
        "progress_expected": 2,
        "progress_found": 1,
        "progress_unexpected": 1,
        "progress_flagged": 1,
        "progress_counted": 3,
    }
