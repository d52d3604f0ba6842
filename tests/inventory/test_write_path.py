"""A change's writes leave the same rows on SQLite and on PostgreSQL.

On PostgreSQL the writes of one change (the scan or its tombstone, the counters, the event) run as
one data-modifying CTE; on SQLite one after another (inventory/writes.py). The scenario below runs
on the database the suite runs on and its outcome is written out in full, so the SQLite run and the
PostgreSQL run check the two against the same answer.
"""

import uuid

import pytest

from inventory import services, writes
from inventory.access import Room
from inventory.exceptions import DuplicateScan, InventoryCompleted, ScanRemoved
from inventory.models import DuplicateScanAttempt, Inventory, InventoryEvent, RemovedScan, Scan
from inventory.reconciliation import selectors
from inventory.reconciliation import services as reconciliation
from realtime import broadcast, protocol

from .reconciliation_helpers import csv_bytes

pytestmark = pytest.mark.django_db

FIRST, OTHER, LATE = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def inventory(alfa):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    reconciliation.expected_import_file(
        inventory=inventory,
        upload=csv_bytes([["No. de serie", "No. Stock"], ["EXP-1", "S1"], ["1HGCM82633A004352", "S2"]]),
        filename="l.csv",
    )
    return Inventory.objects.select_related("agency").get(pk=inventory.pk)


def scenario(inventory, ana, luis) -> dict:
    """Adds, a retry, a duplicate, removals by id and code, a late retry, completion: what each returned."""
    record, remove, complete = services.scan_record, services.scan_remove, services.inventory_complete
    steps = [
        ("added", record, {"user": ana, "code": "exp-1", "scan_id": FIRST}),
        ("flagged", record, {"user": luis, "code": "1HGCM82633A004353"}),  # a misread VIN
        ("other", record, {"user": ana, "code": "OTHER-1", "scan_id": OTHER}),
        ("retried", record, {"user": ana, "code": "exp-1", "scan_id": FIRST}),
        ("duplicate", record, {"user": luis, "code": "EXP-1"}),  # counted already, in another case
        ("removed", remove, {"user": ana, "scan_id": OTHER}),
        ("removed_again", remove, {"user": ana, "scan_id": OTHER}),
        ("late", record, {"user": ana, "code": "OTHER-1", "scan_id": OTHER}),  # a late retry of the add
        ("by_code", remove, {"user": luis, "code": "Exp-1"}),
        ("again", record, {"user": ana, "code": "EXP-1", "scan_id": LATE}),
        ("completed", complete, {"user": luis}),
        ("after_add", record, {"user": ana, "code": "AFTER"}),
        ("after_remove", remove, {"user": ana, "code": "EXP-1"}),
    ]
    results = {}
    for name, write, arguments in steps:
        try:
            results[name] = write(inventory=inventory, **arguments)
        except (DuplicateScan, ScanRemoved, InventoryCompleted) as refusal:
            results[name] = type(refusal).__name__
    return results


def test_a_sequence_of_writes_leaves_the_same_scans_counters_and_events_on_either_database(
    inventory, ana, luis, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(
        broadcast, "publish", lambda inventory_id, *messages, close: published.append(messages)
    )
    with django_capture_on_commit_callbacks(execute=True):
        done = scenario(inventory, ana, luis)

    # What the services returned: saved scans with their pk and times, removed ones without a pk.
    stored = {scan.uid: scan for scan in Scan.objects.all()}
    added, retried, again = done["added"], done["retried"], done["again"]
    created = [done[name].created for name in ("added", "flagged", "other", "retried", "again")]
    assert created == [True, True, True, False, True]
    assert retried.scan.pk == added.scan.pk and added.scan.created_at is not None
    assert stored[LATE].pk == again.scan.pk and stored[LATE].created_at == again.scan.created_at
    refusals = [done[name] for name in ("duplicate", "late", "after_add", "after_remove")]
    assert refusals == ["DuplicateScan", "ScanRemoved", "InventoryCompleted", "InventoryCompleted"]
    removed, removed_again, by_code = done["removed"], done["removed_again"], done["by_code"]
    assert (removed.removed, removed_again.removed, by_code.removed) == (True, False, True)
    assert removed.scan.pk is None and removed.scan.uid == removed_again.scan.uid == OTHER
    assert removed.removed_by_name == removed_again.removed_by_name == "Ana García"
    assert by_code.scan.uid == FIRST and by_code.removed_by_name == "Luis Pérez"
    assert done["completed"].status == "completed" and done["completed"].last_seq == 7

    # The rows.
    scans = {
        (s.code, s.code_key, s.match, s.scanned_by_name) for s in Scan.objects.filter(inventory=inventory)
    }
    assert scans == {
        ("1HGCM82633A004353", "1HGCM82633A004353", "flagged", "Luis Pérez"),
        ("EXP-1", "EXP-1", "expected", "Ana García"),
    }
    tombstones = RemovedScan.objects.filter(inventory=inventory).order_by("code")
    assert [
        (t.uid, t.code, t.match, t.scanned_by_id, t.scanned_by_name, t.removed_by_name) for t in tombstones
    ] == [
        (OTHER, "OTHER-1", "unexpected", ana.pk, "Ana García", "Ana García"),
        (FIRST, "exp-1", "expected", ana.pk, "Ana García", "Luis Pérez"),
    ]
    counters = Inventory.objects.filter(pk=inventory.pk).values(*selectors.PROGRESS_FIELDS.values()).get()
    assert counters == selectors.progress_recount(inventory.pk)
    assert selectors.progress_figures(counters) == {
        "expected": 2,
        "found": 1,
        "missing": 1,
        "unexpected": 0,
        "flagged": 1,
        "counted": 2,
    }
    attempts = DuplicateScanAttempt.objects.filter(inventory=inventory)
    assert [(a.code, a.attempted_by_name, a.first_scanned_by_name) for a in attempts] == [
        ("EXP-1", "Luis Pérez", "Ana García")
    ]

    # The log: gap-free, one row per change, each the facts of the message broadcast after its commit.
    events = list(InventoryEvent.objects.filter(inventory=inventory).order_by("seq"))
    assert [(e.seq, e.type, e.facts.get("scan", {}).get("code")) for e in events] == [
        (1, "scan_added", "exp-1"),
        (2, "scan_added", "1HGCM82633A004353"),
        (3, "scan_added", "OTHER-1"),
        (4, "scan_removed", "OTHER-1"),
        (5, "scan_removed", "exp-1"),
        (6, "scan_added", "EXP-1"),
        (7, "inventory_completed", None),
    ]
    assert [(e.facts.get("progress") or e.facts["summary"])["counted"] for e in events] == [
        1,
        2,
        3,
        2,
        1,
        2,
        2,
    ]
    replayed = [protocol.event_message(e, inventory) for e in events]
    assert [message["data"]["seq"] for message in replayed] == [1, 2, 3, 4, 5, 6, 7]
    assert [messages[0] for messages in published] == replayed
    assert published[-1][1]["type"] == "session_terminated"


def test_the_writes_of_one_change_touch_each_table_once(inventory):
    """The parts of one CTE share a snapshot: two writes to one table could miss each other."""
    event = InventoryEvent(inventory=inventory, seq=1, type="scan_added", facts={})
    with pytest.raises(ValueError):
        writes.run(writes.insert(event), writes.increment(inventory, {"last_seq": 1}), writes.delete(event))
    assert not InventoryEvent.objects.exists()
