import uuid

import pytest
from django.db import transaction

from inventory import services
from inventory.access import Room
from inventory.exceptions import (
    DuplicateScan,
    InvalidInput,
    InventoryCompleted,
    ScanIdConflict,
    ScanNotFound,
)
from inventory.models import Agency, Inventory, InventoryEvent, Scan
from inventory.periods import parse_month, parse_year

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(alfa):
    return services.inventory_get_or_open(room=Room(alfa, 10, 2025))


def test_open_inventory_is_one_per_agency_month_and_year(alfa):
    first = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    again = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    other = services.inventory_get_or_open(room=Room(alfa, 11, 2025))
    assert first.pk == again.pk != other.pk
    assert first.room_key == "Alfa Romeo/10/2025"
    assert first.status == Inventory.Status.OPEN


def test_agency_names_are_unique_whatever_the_case(alfa):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Agency.objects.create(name="ALFA ROMEO", slug="otra")


def test_agency_slug_is_made_from_an_accented_name(peugeot):
    assert peugeot.slug == "peugeot-queretaro"


@pytest.mark.parametrize("value,expected", [("10", 10), ("03", 3), (10, 10), (" 7 ", 7)])
def test_month_is_accepted_as_text_or_number(value, expected):
    assert parse_month(value) == expected


@pytest.mark.parametrize("value", ["0", "13", "octubre", "", None, True, 10.5, "-1"])
def test_month_out_of_range_or_not_a_number_is_refused(value):
    with pytest.raises(InvalidInput):
        parse_month(value)


@pytest.mark.parametrize("value", ["1999", "2101", "abc", None])
def test_year_out_of_range_is_refused(value):
    with pytest.raises(InvalidInput):
        parse_year(value)


def test_scan_record_trims_the_code_and_logs_an_event(inventory, ana):
    result = services.scan_record(inventory=inventory, user=ana, code="  VIN123  ")
    assert result.created
    assert result.scan.code == "VIN123"
    assert result.scan.scanned_by_name == "Ana García"
    event = InventoryEvent.objects.get(inventory=inventory)
    assert (event.seq, event.type) == (1, "scan_added")
    assert event.facts["scan"]["code"] == "VIN123"
    assert event.facts["user_name"] == "Ana García"


def test_duplicate_scan_names_first_scanner(inventory, ana, luis):
    services.scan_record(inventory=inventory, user=ana, code="VIN123")
    with pytest.raises(DuplicateScan) as caught:
        services.scan_record(inventory=inventory, user=luis, code="VIN123")
    assert "Ana García" in caught.value.message
    assert caught.value.details["scannedBy"] == "Ana García"
    assert Scan.objects.filter(inventory=inventory).count() == 1


@pytest.mark.parametrize("code", ["", "   ", "x" * 65, "bad\ncode", "tab\tcode", 123, None])
def test_invalid_codes_are_refused_and_nothing_is_written(inventory, ana, code):
    with pytest.raises(InvalidInput):
        services.scan_record(inventory=inventory, user=ana, code=code)
    assert not Scan.objects.exists()
    assert not InventoryEvent.objects.exists()


def test_a_64_character_code_is_accepted(inventory, ana):
    assert services.scan_record(inventory=inventory, user=ana, code="A" * 64).created


def test_retrying_a_scan_id_stores_it_once(inventory, ana):
    scan_id = uuid.uuid4()
    first = services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=scan_id)
    again = services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=str(scan_id))
    assert first.created and not again.created
    assert again.scan.pk == first.scan.pk
    assert Scan.objects.count() == 1
    assert InventoryEvent.objects.count() == 1


def test_a_scan_id_reused_for_another_code_is_refused(inventory, ana):
    scan_id = uuid.uuid4()
    services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=scan_id)
    with pytest.raises(ScanIdConflict):
        services.scan_record(inventory=inventory, user=ana, code="VIN2", scan_id=scan_id)


def test_scan_remove_deletes_and_logs(inventory, ana, luis):
    services.scan_record(inventory=inventory, user=ana, code="VIN1")
    removed = services.scan_remove(inventory=inventory, user=luis, code="VIN1")
    assert removed.scan.code == "VIN1"
    assert not Scan.objects.exists()
    assert list(InventoryEvent.objects.values_list("seq", "type")) == [(1, "scan_added"), (2, "scan_removed")]
    # A removed code can be counted again.
    assert services.scan_record(inventory=inventory, user=luis, code="VIN1").created


def test_removing_an_unknown_code_is_not_found(inventory, ana):
    with pytest.raises(ScanNotFound):
        services.scan_remove(inventory=inventory, user=ana, code="NOPE")


def test_complete_happens_once_and_closes_the_inventory_to_scans(inventory, ana, luis):
    services.scan_record(inventory=inventory, user=ana, code="VIN1")
    done = services.inventory_complete(inventory=inventory, user=luis)
    assert done.status == Inventory.Status.COMPLETED
    assert done.completed_by == luis and done.completed_by_name == "Luis Pérez"
    with pytest.raises(InventoryCompleted) as caught:
        services.inventory_complete(inventory=inventory, user=ana)
    assert caught.value.details["completedBy"] == "Luis Pérez"
    with pytest.raises(InventoryCompleted):
        services.scan_record(inventory=inventory, user=ana, code="VIN2")
    with pytest.raises(InventoryCompleted):
        services.scan_remove(inventory=inventory, user=ana, code="VIN1")
    assert Scan.objects.count() == 1
    assert InventoryEvent.objects.filter(type="inventory_completed").count() == 1


def test_a_stored_scan_retried_after_completion_is_still_answered(inventory, ana):
    scan_id = uuid.uuid4()
    services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=scan_id)
    services.inventory_complete(inventory=inventory, user=ana)
    again = services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=scan_id)
    assert not again.created


def test_seq_is_gap_free_per_inventory(alfa, ana):
    one = services.inventory_get_or_open(room=Room(alfa, 1, 2026))
    two = services.inventory_get_or_open(room=Room(alfa, 2, 2026))
    for n in range(3):
        services.scan_record(inventory=one, user=ana, code=f"A{n}")
    services.scan_record(inventory=two, user=ana, code="B0")
    assert list(InventoryEvent.objects.filter(inventory=one).values_list("seq", flat=True)) == [1, 2, 3]
    assert list(InventoryEvent.objects.filter(inventory=two).values_list("seq", flat=True)) == [1]
    one.refresh_from_db()
    assert one.last_seq == 3


@pytest.mark.django_db(transaction=True)
def test_broadcast_waits_for_commit_and_never_announces_a_rollback(alfa, ana, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "realtime.broadcast.publish", lambda inventory_id, *messages, **kw: sent.append(messages)
    )
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    with pytest.raises(RuntimeError), transaction.atomic():
        services.scan_record(inventory=inventory, user=ana, code="VIN1")
        assert sent == []  # not yet: the transaction is still open
        raise RuntimeError("rolled back")
    assert sent == [] and not Scan.objects.exists()
    services.scan_record(inventory=inventory, user=ana, code="VIN2")
    assert [m[0]["type"] for m in sent] == ["scan_added"]


def test_prune_events_keeps_recent_events(inventory, ana):
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    for code in ("A", "B"):
        services.scan_record(inventory=inventory, user=ana, code=code)
    InventoryEvent.objects.filter(seq=1).update(created_at=timezone.now() - timedelta(days=40))
    out = StringIO()
    call_command("prune_events", "--days", "30", stdout=out)
    assert "Deleted 1 events" in out.getvalue()
    assert list(InventoryEvent.objects.values_list("seq", flat=True)) == [2]


def test_a_code_counts_once_whatever_its_letter_case(alfa, ana, luis):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    services.scan_record(inventory=inventory, user=ana, code="1HGCM82633A004352")
    with pytest.raises(DuplicateScan) as refused:
        services.scan_record(inventory=inventory, user=luis, code="1hgcm82633a004352")
    assert refused.value.details["scannedBy"] == "Ana García"
    removed = services.scan_remove(inventory=inventory, user=luis, code="1hgCM82633A004352")
    assert removed.scan.code == "1HGCM82633A004352"
    assert not Scan.objects.exists()


# A removed scan stays removed (issue 11, item 14).


def test_a_late_retry_of_a_removed_scan_is_refused_and_stores_nothing(inventory, ana, luis):
    from inventory.exceptions import ScanRemoved

    scan_id = uuid.uuid4()
    services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=scan_id)
    services.scan_remove(inventory=inventory, user=luis, code="VIN1")
    with pytest.raises(ScanRemoved) as refused:
        services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=scan_id)
    assert refused.value.code == "scan_removed" and refused.value.status == 409
    assert refused.value.details["removedBy"] == "Luis Pérez"
    assert not Scan.objects.exists()
    assert list(InventoryEvent.objects.values_list("type", flat=True)) == ["scan_added", "scan_removed"]
    # The code itself may be counted again, under a new id.
    assert services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=uuid.uuid4()).created


def test_a_removed_scan_id_reused_for_another_code_is_a_conflict(inventory, ana):
    scan_id = uuid.uuid4()
    services.scan_record(inventory=inventory, user=ana, code="VIN1", scan_id=scan_id)
    services.scan_remove(inventory=inventory, user=ana, code="VIN1")
    with pytest.raises(ScanIdConflict):
        services.scan_record(inventory=inventory, user=ana, code="VIN2", scan_id=scan_id)
    assert not Scan.objects.exists()


def test_a_retried_removal_by_id_never_removes_a_later_rescan(inventory, ana, luis):
    first = services.scan_record(inventory=inventory, user=ana, code="VIN1").scan
    done = services.scan_remove(inventory=inventory, user=ana, code="VIN1", scan_id=first.uid)
    assert done.removed and done.scan.uid == first.uid
    rescan = services.scan_record(inventory=inventory, user=luis, code="VIN1").scan
    # The first removal's answer was lost; the client sends it again.
    again = services.scan_remove(inventory=inventory, user=ana, code="VIN1", scan_id=str(first.uid))
    assert not again.removed  # answered as done, nothing changed
    assert again.scan.uid == first.uid and again.removed_by_name == "Ana García"
    assert list(Scan.objects.values_list("uid", flat=True)) == [rescan.uid]
    assert InventoryEvent.objects.filter(type="scan_removed").count() == 1


def test_removal_by_id_removes_only_that_scan(inventory, ana):
    scan = services.scan_record(inventory=inventory, user=ana, code="VIN1").scan
    with pytest.raises(ScanNotFound):
        services.scan_remove(inventory=inventory, user=ana, code="VIN1", scan_id=uuid.uuid4())
    with pytest.raises(ScanIdConflict):
        services.scan_remove(inventory=inventory, user=ana, code="VIN2", scan_id=scan.uid)
    assert Scan.objects.count() == 1
    # The id alone is enough.
    assert services.scan_remove(inventory=inventory, user=ana, scan_id=scan.uid).removed
    assert not Scan.objects.exists()


def test_a_removal_with_neither_code_nor_id_is_refused(inventory, ana):
    services.scan_record(inventory=inventory, user=ana, code="VIN1")
    with pytest.raises(InvalidInput):
        services.scan_remove(inventory=inventory, user=ana)
    with pytest.raises(InvalidInput):
        services.scan_remove(inventory=inventory, user=ana, code="VIN1", scan_id="not-a-uuid")
    assert Scan.objects.count() == 1


# Codes behave the same on both databases (issue 11, item 18).


@pytest.mark.parametrize(
    "code", ["ß" * 40, "ß" * 64, "ﬃ" * 64, "ΐ" * 64], ids=["sharp-s-40", "sharp-s-64", "ffi-64", "iota-64"]
)
def test_a_code_whose_upper_case_is_longer_is_stored_on_every_database(inventory, ana, code):
    # "ß".upper() is "SS": the compared form may be longer than the 64 characters of the code.
    result = services.scan_record(inventory=inventory, user=ana, code=code)
    assert result.created and result.scan.code == code
    stored = Scan.objects.get()
    assert stored.code == code and stored.code_key == code.upper()
    with pytest.raises(DuplicateScan):
        services.scan_record(inventory=inventory, user=ana, code=f" {code} ")
    assert services.scan_remove(inventory=inventory, user=ana, code=code).removed


def test_no_character_upper_cases_to_more_than_the_key_allows():
    import sys

    from inventory.models import CODE_KEY_MAX_LENGTH, CODE_MAX_LENGTH
    from inventory.reconciliation.matching import code_key

    widest = max(len(chr(point).upper()) for point in range(sys.maxunicode + 1))
    assert widest * CODE_MAX_LENGTH <= CODE_KEY_MAX_LENGTH
    assert len(code_key("ΐ" * CODE_MAX_LENGTH)) == CODE_KEY_MAX_LENGTH


def test_a_code_whose_upper_case_is_longer_matches_the_expected_list(inventory, ana):
    from inventory.reconciliation import services as reconciliation_services

    from .reconciliation_helpers import csv_bytes

    code = "ß" * 40
    reconciliation_services.expected_import_file(
        inventory=inventory, upload=csv_bytes([["VIN"], [code], ["OTHER-1"]]), filename="books.csv"
    )
    assert services.scan_record(inventory=inventory, user=ana, code=code).scan.match == "expected"


def test_scans_removed_before_the_upgrade_stay_removed(inventory, ana, luis, monkeypatch):
    """Migration 0004 keeps the ids of the removals the event log still holds."""
    from importlib import import_module

    from django.apps import apps

    from inventory.exceptions import ScanRemoved
    from inventory.models import RemovedScan

    # The log as 0005 read it, before 0007: each row's message as its `payload`.
    as_frame = import_module("inventory.migrations.0007_event_facts").facts_to_frame
    monkeypatch.setattr(InventoryEvent, "payload", property(as_frame), raising=False)

    removed_id, kept_id = uuid.uuid4(), uuid.uuid4()
    services.scan_record(inventory=inventory, user=ana, code="OLD-1", scan_id=removed_id)
    services.scan_record(inventory=inventory, user=ana, code="OLD-2", scan_id=kept_id)
    services.scan_remove(inventory=inventory, user=luis, code="OLD-1")
    RemovedScan.objects.all().delete()  # as before the upgrade: only the event log knows
    import_module("inventory.migrations.0005_removed_scans").keep_removed_scan_ids(apps, None)
    tombstone = RemovedScan.objects.get()
    assert (tombstone.uid, tombstone.code, tombstone.removed_by_name) == (removed_id, "OLD-1", "Luis Pérez")
    assert tombstone.removed_by == luis and tombstone.scanned_by == ana
    with pytest.raises(ScanRemoved):
        services.scan_record(inventory=inventory, user=ana, code="OLD-1", scan_id=removed_id)
    assert not services.scan_record(inventory=inventory, user=ana, code="OLD-2", scan_id=kept_id).created
