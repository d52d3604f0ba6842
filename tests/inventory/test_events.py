"""The seam: events recorded in the write's transaction, handed to subscribers only after it commits."""

import json

import pytest
from django.db import transaction

from inventory import events, services
from inventory.access import Room
from inventory.exceptions import DuplicateScan
from inventory.models import InventoryEvent
from inventory.reconciliation import services as reconciliation

from .reconciliation_helpers import csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(alfa):
    return services.inventory_get_or_open(room=Room(alfa, 10, 2025))


@pytest.fixture
def heard(monkeypatch):
    """The events handed on, in order (the live publisher silenced: no room to deliver to here)."""
    monkeypatch.setattr("realtime.broadcast.publish", lambda *args, **kwargs: None)
    received = []
    events.subscribe(received.append)
    yield received
    events.unsubscribe(received.append)


def test_a_scan_is_logged_as_facts_in_its_transaction(inventory, ana, heard):
    scan = services.scan_record(inventory=inventory, user=ana, code="VIN-1").scan
    row = InventoryEvent.objects.get(inventory=inventory)
    assert (row.seq, row.kind) == (1, events.SCAN_ADDED)
    assert row.facts["scan"] == {
        "id": str(scan.uid),
        "code": "VIN-1",
        "scanned_by_id": str(ana.pk),
        "scanned_by_name": "Ana García",
        "scanned_at": row.facts["scan"]["scanned_at"],
        "match": None,
    }
    assert (row.facts["user_id"], row.facts["user_name"]) == (str(ana.pk), "Ana García")
    assert "type" not in row.facts and "data" not in row.facts  # facts, not a protocol message
    assert json.loads(json.dumps(row.facts)) == row.facts
    assert heard == []  # the test's transaction has not committed


def test_subscribers_hear_an_event_only_after_its_commit(
    inventory, ana, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.scan_record(inventory=inventory, user=ana, code="VIN-1")
        assert heard == []
    assert len(callbacks) == 1
    (event,) = heard
    assert (event.kind, event.seq, event.inventory.pk) == (events.SCAN_ADDED, 1, inventory.pk)
    assert event.facts == InventoryEvent.objects.get(inventory=inventory).facts


def test_a_rolled_back_write_announces_nothing_and_logs_nothing(
    inventory, ana, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.scan_record(inventory=inventory, user=ana, code="VIN-1")
        transaction.set_rollback(True)
    assert heard == []
    assert not InventoryEvent.objects.exists()


def test_refused_writes_leave_the_log_without_gaps(
    inventory, ana, luis, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.scan_record(inventory=inventory, user=ana, code="VIN-1").scan
        with pytest.raises(DuplicateScan):
            services.scan_record(inventory=inventory, user=luis, code="vin-1")
        services.scan_record(inventory=inventory, user=ana, code="VIN-1", scan_id=first.uid)  # a retry
        services.scan_record(inventory=inventory, user=luis, code="VIN-2")
        services.scan_remove(inventory=inventory, user=ana, code="VIN-1")
        services.inventory_complete(inventory=inventory, user=ana)
    logged = list(InventoryEvent.objects.filter(inventory=inventory).values_list("seq", "type"))
    assert logged == [(1, "scan_added"), (2, "scan_added"), (3, "scan_removed"), (4, "inventory_completed")]
    assert [(event.seq, event.kind) for event in heard] == logged


def test_a_progress_change_is_announced_after_commit_but_not_logged(
    inventory, ana, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reconciliation.expected_import_file(
            inventory=inventory, upload=csv_bytes([["VIN"], ["VIN-1"]]), filename="libros.csv"
        )
    (event,) = heard
    assert (event.kind, event.seq) == (events.PROGRESS_CHANGED, None)
    assert event.facts["cause"] == "expected_imported"
    assert event.facts["progress"]["expected"] == 1
    assert not InventoryEvent.objects.exists()


def test_a_subscriber_subscribed_twice_hears_each_event_once(
    inventory, ana, heard, django_capture_on_commit_callbacks
):
    events.subscribe(heard.append)
    with django_capture_on_commit_callbacks(execute=True):
        services.scan_record(inventory=inventory, user=ana, code="VIN-1")
    assert len(heard) == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_commit_is_heard_and_a_real_rollback_is_not(inventory, ana, luis, heard):
    services.scan_record(inventory=inventory, user=ana, code="VIN-1")
    assert [(event.kind, event.seq) for event in heard] == [(events.SCAN_ADDED, 1)]
    with pytest.raises(DuplicateScan):  # rolled back: no event, and the seq is given back
        services.scan_record(inventory=inventory, user=luis, code="VIN-1")
    services.scan_record(inventory=inventory, user=luis, code="VIN-2")
    assert [event.seq for event in heard] == [1, 2]


def test_migration_0007_turns_the_old_messages_into_facts_and_back(inventory, ana, luis, heard):
    """The way back writes the message the room was sent; the way forward takes the facts out of it."""
    from importlib import import_module
    from types import SimpleNamespace

    from realtime import protocol

    migration = import_module("inventory.migrations.0007_event_facts")
    reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes([["VIN"], ["VIN-1"]]), filename="libros.csv"
    )
    services.scan_record(inventory=inventory, user=ana, code="VIN-1")
    services.scan_record(inventory=inventory, user=ana, code="VIN-2")
    services.scan_remove(inventory=inventory, user=luis, code="VIN-2")
    services.inventory_complete(inventory=inventory, user=luis)
    rows = list(InventoryEvent.objects.filter(inventory=inventory).select_related("inventory__agency"))
    assert len(rows) == 4
    for row in rows:
        frame = migration.facts_to_frame(row)
        assert frame == protocol.event_message(row, row.inventory)
        facts = migration.frame_to_facts(SimpleNamespace(type=row.type, facts=frame, inventory=row.inventory))
        if row.kind == events.SCAN_REMOVED:
            facts["scan"]["match"] = row.facts["scan"]["match"]  # a removal's message did not carry it
        assert facts == row.facts
