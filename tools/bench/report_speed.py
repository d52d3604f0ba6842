"""How heavy the variance report is with a big expected list: the page, the CSV and the XLSX.

    .venv/bin/python tools/bench/report_speed.py [--expected 100000] [--found 50000] [--unexpected 1000]

Method: a throwaway SQLite database (or DATABASE_URL: a database you can write to freely) gets
one inventory with --expected vehicles in its books (8 fields each, 7 locations), --found of
them scanned and --unexpected scans outside the books, written in bulk. Then, for the report page
(as a staff manager, session cookie), `report.csv` and `report.xlsx` (token), a fresh
`manage.py serve` (daphne) process is started, the request is timed end to end (wall clock,
whole body read) and the process's peak RSS (VmHWM) is read after. Prints one line per read.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.sampler import PeakRss, rss_kb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected", type=int, default=100_000)
    parser.add_argument("--found", type=int, default=50_000)
    parser.add_argument("--unexpected", type=int, default=1_000)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="report-speed-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir}/db.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "inventory_site.settings.test"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.utils import timezone

    from inventory import services
    from inventory.access import Room
    from inventory.models import Agency, ExpectedVehicle, Scan, ScanMatch
    from inventory.reconciliation import services as reconciliation_services
    from tests.conftest import token_for
    from tests.servers import running_server

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    agency, _ = Agency.objects.get_or_create(name="Bench Report")
    boss, _ = get_user_model().objects.get_or_create(
        username="bench-report", defaults={"is_staff": True, "is_superuser": True}
    )
    inventory = services.inventory_get_or_open(room=Room(agency, timezone.now().month, timezone.now().year))
    ExpectedVehicle.objects.filter(inventory=inventory).delete()
    Scan.objects.filter(inventory=inventory).delete()
    now = timezone.now()
    ExpectedVehicle.objects.bulk_create(
        [
            ExpectedVehicle(
                inventory=inventory,
                code=f"VIN{n:014d}",
                code_key=f"VIN{n:014d}",
                stock_number=f"S{n:06d}",
                description=f"Vehículo de prueba número {n}",
                make="Peugeot",
                model="208",
                year=2020 + n % 5,
                color="Rojo",
                location=f"Patio {n % 7}",
                line=n + 2,
            )
            for n in range(args.expected)
        ],
        batch_size=5000,
    )
    scans = [(f"VIN{n:014d}", ScanMatch.EXPECTED) for n in range(args.found)]
    scans += [(f"EXTRA{n:06d}", ScanMatch.UNEXPECTED) for n in range(args.unexpected)]
    Scan.objects.bulk_create(
        [
            Scan(
                inventory=inventory,
                code=code,
                code_key=code,
                match=match,
                scanned_by=boss,
                scanned_by_name="Bench",
                scanned_at=now,
            )
            for code, match in scans
        ],
        batch_size=5000,
    )
    reconciliation_services.progress_refresh(inventory=inventory)  # rows written behind the services' back
    session = SessionStore()
    session["_auth_user_id"] = str(boss.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = boss.get_session_auth_hash()
    session.create()
    token = token_for(boss)
    reads = {
        "report page": (
            f"/inventory/{agency.slug}/{inventory.month}/{inventory.year}/report/",
            {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"},
        ),
        "report.csv": (f"/api/inventories/{inventory.pk}/report.csv", {"Authorization": f"Token {token}"}),
        "report.xlsx": (f"/api/inventories/{inventory.pk}/report.xlsx", {"Authorization": f"Token {token}"}),
    }
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"{args.expected} expected, {args.found} found, {args.unexpected} unexpected; {engine}")
    for name, (path, headers) in reads.items():
        with running_server() as server:
            pid = server.process.pid
            before = rss_kb(pid)
            started = time.perf_counter()
            request = urllib.request.Request(server.http + path, headers=headers)
            with PeakRss(pid) as watched, urllib.request.urlopen(request, timeout=600) as response:
                assert response.status == 200, response.status
                first = time.perf_counter() - started
                body = response.read()
            elapsed = time.perf_counter() - started
            peak = watched.kb
        print(
            f"{name}: {len(body) / 1e6:.2f} MB in {elapsed:.2f} s (first byte {first:.2f} s); "
            f"server RSS {before / 1024:.0f} MB, peak {peak / 1024:.0f} MB"
        )


if __name__ == "__main__":
    main()
