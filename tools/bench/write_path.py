"""What one scan's write costs: statements and CPU per write, on an empty and on a full inventory.

    .venv/bin/python tools/bench/write_path.py [--writes 2000] [--full 5000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inventory .venv/bin/python tools/bench/write_path.py

Method: in-process, through the services every entry point shares (`scan_record`, `scan_remove`,
`inventory_complete`), on a throwaway database (SQLite in memory, or a new PostgreSQL database
`bench_write_path_<pid>` created next to DATABASE_URL's and dropped at the end). For an inventory
of 0 and of --full scans (half of them in a 1,000-vehicle expected list), it counts the statements
of one add, one removal and one completion (django's CaptureQueriesContext; on PostgreSQL each
statement is one round trip, BEGIN and COMMIT included), then times --writes adds in a row and
the removal of the same codes: Python CPU (process_time) and, on PostgreSQL, the backend's CPU
(utime + stime of its process, read by tools/sampler.py) per write; once with the broadcast after commit
(the in-memory channel layer, REDIS_URL unset: a group with no socket; from sync code outside an
event loop, as here, async_to_sync starts a loop per call) and once without it (the write path
alone).
--profile prints cProfile's top functions of the adds without the relay. BENCH_SHOW_SQL=1 prints
the statements.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.sampler import cpu_seconds  # noqa: E402


def backend_cpu(pid: int | None) -> float:
    """Seconds of CPU a local PostgreSQL backend has used (0 when not known)."""
    return cpu_seconds(pid) if pid is not None else 0.0


def statements(context) -> int:
    """The statements a CaptureQueriesContext saw, without the transaction's BEGIN and COMMIT."""
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")
    return sum(not query["sql"].upper().startswith(control) for query in context.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--full", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the adds")
    args = parser.parse_args()

    os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings.local")
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "false"  # no per-query bookkeeping while timing
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from inventory import services
    from inventory.models import Agency, ExpectedVehicle, Inventory, Scan, ScanMatch
    from inventory.reconciliation import services as reconciliation_services
    from realtime import broadcast

    publish = broadcast.publish

    postgres = connection.vendor == "postgresql"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = (
        f"bench_write_path_{os.getpid()}" if postgres else ":memory:"
    )
    original_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        user = get_user_model().objects.create(username="bench-writer", first_name="Bench")
        year = timezone.now().year
        print(f"database: {connection.vendor}, {args.writes} adds timed per case")
        for number, full in enumerate((0, args.full)):
            agency = Agency.objects.create(name=f"Bench write {number}")
            inventory = Inventory.objects.create(agency=agency, month=1, year=year)
            if full:
                now = timezone.now()
                ExpectedVehicle.objects.bulk_create(
                    [
                        ExpectedVehicle(inventory=inventory, code=f"E{n:08d}", code_key=f"E{n:08d}", line=n)
                        for n in range(1000)
                    ]
                )
                Scan.objects.bulk_create(
                    [
                        Scan(
                            inventory=inventory,
                            code=f"E{n:08d}" if n < 500 else f"F{n:08d}",
                            code_key=f"E{n:08d}" if n < 500 else f"F{n:08d}",
                            match=ScanMatch.EXPECTED if n < 500 else ScanMatch.UNEXPECTED,
                            scanned_by=user,
                            scanned_by_name="Bench",
                            scanned_at=now,
                        )
                        for n in range(full)
                    ],
                    batch_size=2000,
                )
                refresh = getattr(reconciliation_services, "progress_refresh", None)
                if refresh is not None:  # counters kept on the inventory (issue 12)
                    refresh(inventory=inventory)
            inventory = Inventory.objects.select_related("agency").get(pk=inventory.pk)
            with CaptureQueriesContext(connection) as added:
                services.scan_record(inventory=inventory, user=user, code="PROBE-1")
            with CaptureQueriesContext(connection) as removed:
                services.scan_remove(inventory=inventory, user=user, code="PROBE-1")
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()" if postgres else "SELECT NULL")
                pid = cursor.fetchone()[0]
            timed = {}
            for relay in (True, False):
                # Without the relay: the service's own cost (the broadcast after commit is item 2's).
                broadcast.publish = publish if relay else (lambda *a, **k: None)
                codes = [f"W{number}{relay:d}-{n:06d}" for n in range(args.writes)]
                for name, write in (("add", services.scan_record), ("remove", services.scan_remove)):
                    profiler = cProfile.Profile() if args.profile and not relay else None
                    cpu, backend, wall = time.process_time(), backend_cpu(pid), time.perf_counter()
                    if profiler:
                        profiler.enable()
                    for code in codes:
                        write(inventory=inventory, user=user, code=code)
                    if profiler:
                        profiler.disable()
                    timed[name, relay] = (
                        (time.process_time() - cpu) / args.writes * 1000,
                        (backend_cpu(pid) - backend) / args.writes * 1000,
                        (time.perf_counter() - wall) / args.writes * 1000,
                    )
                    if profiler:
                        print(f"  profile of the {name}s without the relay:")
                        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
            broadcast.publish = publish
            with CaptureQueriesContext(connection) as completed:
                services.inventory_complete(inventory=inventory, user=user)
            counts = ", ".join(
                f"{name} {statements(context)} (+{len(context) - statements(context)})"
                for name, context in (("add", added), ("remove", removed), ("complete", completed))
            )
            print(f"inventory of {full:>5} scans: statements {counts}; in brackets BEGIN and COMMIT")
            for (name, relay), (cpu, backend, wall) in timed.items():
                print(
                    f"  per {name:<6} {'with' if relay else 'without'} the in-memory relay: "
                    f"python {cpu:.2f} ms CPU, "
                    + (f"postgres backend {backend:.2f} ms CPU, " if postgres else "")
                    + f"wall {wall:.2f} ms"
                )
            if os.environ.get("BENCH_SHOW_SQL"):
                for name, context in (("add", added), ("remove", removed), ("complete", completed)):
                    for query in context.captured_queries:
                        print(f"  {name}: {query['sql'][:160]}")
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)


if __name__ == "__main__":
    main()
