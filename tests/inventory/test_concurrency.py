"""Exactly once under real concurrency: threads with their own database connections."""

import threading

import pytest
from django.db import connection

from inventory import services
from inventory.access import Room
from inventory.exceptions import DuplicateScan, InventoryCompleted
from inventory.models import Inventory, InventoryEvent, Scan

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*jobs):
    """Start every job at the same moment, each in a thread with its own connection."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(index, job):
        try:
            barrier.wait()
            results[index] = ("ok", job())
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def inventory(alfa):
    return services.inventory_get_or_open(room=Room(alfa, 10, 2025))


def test_two_users_completing_at_once_get_one_success_and_one_conflict(inventory, ana, luis):
    for _ in range(5):
        Inventory.objects.filter(pk=inventory.pk).update(
            status="open", completed_by=None, completed_by_name=""
        )
        results = run_together(
            lambda: services.inventory_complete(inventory=inventory, user=ana),
            lambda: services.inventory_complete(inventory=inventory, user=luis),
        )
        outcomes = sorted(kind for kind, _ in results)
        assert outcomes == ["error", "ok"], results
        winner = next(value for kind, value in results if kind == "ok")
        loser = next(value for kind, value in results if kind == "error")
        assert isinstance(loser, InventoryCompleted)
        assert loser.details["completedBy"] == winner.completed_by_name


def test_no_scan_is_accepted_after_completion_however_requests_interleave(inventory, ana, luis):
    jobs = [lambda n=n: services.scan_record(inventory=inventory, user=ana, code=f"C{n}") for n in range(8)]
    jobs.insert(4, lambda: services.inventory_complete(inventory=inventory, user=luis))
    results = run_together(*jobs)
    completion = InventoryEvent.objects.get(inventory=inventory, type="inventory_completed")
    stored = list(Scan.objects.filter(inventory=inventory))
    # Every stored scan was logged before the completion; every refused one was refused for it.
    logged = InventoryEvent.objects.filter(inventory=inventory, type="scan_added")
    assert all(event.seq < completion.seq for event in logged)
    assert len(stored) == logged.count()
    refused = [value for kind, value in results if kind == "error"]
    assert all(isinstance(exc, InventoryCompleted) for exc in refused)
    assert len(stored) + len(refused) == 8


def test_the_same_code_scanned_at_once_is_counted_once(inventory, ana, luis):
    results = run_together(
        *[
            lambda user=user: services.scan_record(inventory=inventory, user=user, code="VIN1")
            for user in (ana, luis) * 3
        ]
    )
    assert [kind for kind, _ in results].count("ok") == 1
    assert all(isinstance(value, DuplicateScan) for kind, value in results if kind == "error")
    assert Scan.objects.filter(code="VIN1").count() == 1


def test_seq_stays_gap_free_under_concurrent_writers(inventory, ana, luis):
    run_together(
        *[lambda n=n: services.scan_record(inventory=inventory, user=ana, code=f"S{n}") for n in range(10)]
    )
    seqs = list(InventoryEvent.objects.filter(inventory=inventory).values_list("seq", flat=True))
    assert seqs == list(range(1, 11))


def test_a_scan_retried_while_it_is_removed_is_never_stored_again(inventory, ana, luis):
    import uuid

    from inventory.exceptions import ScanRemoved

    for round_ in range(6):
        scan_id = uuid.uuid4()
        code = f"R{round_}"
        services.scan_record(inventory=inventory, user=ana, code=code, scan_id=scan_id)
        remove = lambda code=code, uid=scan_id: services.scan_remove(  # noqa: E731
            inventory=inventory, user=luis, code=code, scan_id=uid
        )
        retry = lambda code=code, uid=scan_id: services.scan_record(  # noqa: E731
            inventory=inventory, user=ana, code=code, scan_id=uid
        )
        results = run_together(remove, retry, retry, retry)
        removal, *retries = results
        assert removal[0] == "ok" and removal[1].removed, results
        # A retry answered before the removal got the stored scan; after it, scan_removed.
        for kind, value in retries:
            assert (kind == "ok" and not value.created) or isinstance(value, ScanRemoved), results
        assert not Scan.objects.filter(uid=scan_id).exists()
    assert InventoryEvent.objects.filter(inventory=inventory, type="scan_added").count() == 6
