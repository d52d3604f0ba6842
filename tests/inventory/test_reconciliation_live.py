"""Live matching: each scan against the expected list, progress in the broadcasts, refused duplicates."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory import services
from inventory.access import Room
from inventory.exceptions import DuplicateScan
from inventory.models import DuplicateScanAttempt, InventoryEvent, Scan
from inventory.reconciliation import services as reconciliation
from realtime import protocol

from .reconciliation_helpers import BOOKS, csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(alfa):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="libros.csv")
    return inventory


def last_event(inventory) -> dict:
    """The last logged event's message, as the room received it."""
    return protocol.event_message(
        InventoryEvent.objects.filter(inventory=inventory).order_by("-seq").first(), inventory
    )


def test_a_scan_in_the_books_is_expected_whatever_its_case(inventory, ana):
    services.scan_record(inventory=inventory, user=ana, code=" 1hgcm82633a004352 ")
    data = last_event(inventory)["data"]
    assert data["match"] == "expected"
    assert data["progress"] == {
        "expected": 4,
        "found": 1,
        "missing": 3,
        "unexpected": 0,
        "flagged": 0,
        "counted": 1,
    }
    # Protocol v1's fields are all still there.
    assert {"agency", "month", "year", "userId", "userName", "scanData", "timestamp", "seq"} <= set(data)
    assert data["scanData"]["code"] == "1hgcm82633a004352"


def test_a_scan_not_in_the_books_is_unexpected(inventory, ana):
    services.scan_record(inventory=inventory, user=ana, code="UNLISTED-1")
    data = last_event(inventory)["data"]
    assert data["match"] == "unexpected"
    assert data["progress"]["unexpected"] == 1 and data["progress"]["found"] == 0


def test_a_vin_that_fails_the_check_digit_is_kept_but_flagged(inventory, ana):
    result = services.scan_record(inventory=inventory, user=ana, code="1M8GDM9AKKP042788")
    assert result.created and result.scan.match == "flagged"
    data = last_event(inventory)["data"]
    assert data["match"] == "flagged"
    assert data["progress"]["flagged"] == 1 and data["progress"]["unexpected"] == 0


def test_without_an_expected_list_match_is_null_but_misread_vins_are_flagged(alfa, ana):
    bare = services.inventory_get_or_open(room=Room(alfa, 9, 2025))
    services.scan_record(inventory=bare, user=ana, code="ANY-CODE")
    assert last_event(bare)["data"]["match"] is None
    services.scan_record(inventory=bare, user=ana, code="1M8GDM9AKKP042788")
    data = last_event(bare)["data"]
    assert data["match"] == "flagged"
    assert data["progress"] == {
        "expected": 0,
        "found": 0,
        "missing": 0,
        "unexpected": 0,
        "flagged": 1,
        "counted": 2,
    }


def test_scan_removed_carries_the_progress_after_the_removal(inventory, ana, luis):
    services.scan_record(inventory=inventory, user=ana, code="1HGCM82633A004352")
    services.scan_record(inventory=inventory, user=ana, code="UNLISTED-1")
    services.scan_remove(inventory=inventory, user=luis, code="1HGCM82633A004352")
    message = last_event(inventory)
    assert message["type"] == "scan_removed"
    assert message["data"]["progress"] == {
        "expected": 4,
        "found": 0,
        "missing": 4,
        "unexpected": 1,
        "flagged": 0,
        "counted": 1,
    }


def test_inventory_completed_carries_the_summary(inventory, ana, luis):
    services.scan_record(inventory=inventory, user=ana, code="1HGCM82633A004352")
    services.scan_record(inventory=inventory, user=luis, code="1M8GDM9AXKP042788")
    services.scan_record(inventory=inventory, user=luis, code="UNLISTED-1")
    services.scan_record(inventory=inventory, user=luis, code="1M8GDM9AKKP042788")
    services.inventory_complete(inventory=inventory, user=luis)
    message = last_event(inventory)
    assert message["type"] == "inventory_completed"
    assert message["data"]["summary"] == {
        "expected": 4,
        "counted": 4,
        "found": 2,
        "missing": 2,
        "unexpected": 1,
        "flagged": 1,
    }
    assert message["data"]["message"] == "El inventario ha sido completado por Luis Pérez."


def test_a_refused_duplicate_is_recorded_though_its_transaction_rolled_back(inventory, ana, luis):
    services.scan_record(inventory=inventory, user=ana, code="1HGCM82633A004352")
    with pytest.raises(DuplicateScan):
        services.scan_record(inventory=inventory, user=luis, code=" 1HGCM82633A004352 ")
    attempt = DuplicateScanAttempt.objects.get()
    assert (attempt.code, attempt.attempted_by, attempt.attempted_by_name, attempt.first_scanned_by_name) == (
        "1HGCM82633A004352",
        luis,
        "Luis Pérez",
        "Ana García",
    )
    assert Scan.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_duplicate_survives_in_autocommit_and_nothing_else_is_written(alfa, ana, luis):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    services.scan_record(inventory=inventory, user=ana, code="VIN1")
    with pytest.raises(DuplicateScan):
        services.scan_record(inventory=inventory, user=luis, code="VIN1")
    assert DuplicateScanAttempt.objects.filter(inventory=inventory).count() == 1
    assert InventoryEvent.objects.filter(inventory=inventory).count() == 1


def test_matching_costs_two_queries_per_scan(inventory, alfa, ana):
    bare = services.inventory_get_or_open(room=Room(alfa, 1, 2026))
    services.scan_record(inventory=bare, user=ana, code="WARM-UP")
    with CaptureQueriesContext(connection) as with_list:
        services.scan_record(inventory=inventory, user=ana, code="1HGCM82633A004352")
    with CaptureQueriesContext(connection) as without_list:
        services.scan_record(inventory=bare, user=ana, code="OTHER")
    assert len(with_list) == len(without_list) <= 12
    matching = [q["sql"] for q in with_list.captured_queries if "inventory_expectedvehicle" in q["sql"]]
    assert len(matching) == 1


def test_importing_a_list_tells_the_room_the_new_figures(
    alfa, ana, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        "realtime.broadcast.publish", lambda inventory_id, *messages, **kw: sent.extend(messages)
    )
    inventory = services.inventory_get_or_open(room=Room(alfa, 12, 2025))
    services.scan_record(inventory=inventory, user=ana, code="11111111111111111")
    with django_capture_on_commit_callbacks(execute=True):
        reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="l.csv")
    message = sent[-1]
    assert message["type"] == protocol.PROGRESS
    assert message["data"]["cause"] == "expected_imported"
    assert message["data"]["progress"]["found"] == 1 and message["data"]["progress"]["expected"] == 4
    assert "seq" not in message["data"]
    assert {"agency", "month", "year", "timestamp"} <= set(message["data"])


def test_a_replayed_scan_message_carries_its_match(inventory, ana):
    scan = services.scan_record(inventory=inventory, user=ana, code="UNLISTED-9").scan
    message = protocol.scan_added(scan)
    assert message["data"]["match"] == "unexpected"
    assert "progress" not in message["data"]


def test_a_snapshot_carries_each_scans_match(inventory, ana):
    for code in ("1HGCM82633A004352", "UNLISTED-1", "1M8GDM9AKKP042788"):
        services.scan_record(inventory=inventory, user=ana, code=code)
    snapshot = protocol.snapshot(inventory, list(inventory.scans.all()), seq=inventory.last_seq)
    matches = {scan["code"]: scan["match"] for scan in snapshot["data"]["scans"]}
    assert matches == {
        "1HGCM82633A004352": "expected",
        "UNLISTED-1": "unexpected",
        "1M8GDM9AKKP042788": "flagged",
    }
