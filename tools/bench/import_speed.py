"""How fast the books' stock list imports: N rows of CSV and XLSX, read and saved, several runs.

    .venv/bin/python tools/bench/import_speed.py [--rows 5000] [--runs 3]

Method: builds a realistic file (VIN with a valid check digit, stock number, description,
location, colour, year, 8 columns) of --rows rows in CSV and in XLSX; then, for each format and
run, times reading the file (`read_expected_file`) and the whole import through the service the
admin, REST and the command share (`expected_import_file`: read, delete the old list, bulk insert,
re-match the scans). The inventory already holds the same list, so every run after the first
replaces 5,000 rows, as a re-import does. The database is a throwaway SQLite file unless
DATABASE_URL is set (then use a database you can write to freely). Prints one line per run and
the median per format; writes nothing else.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="import-speed-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir}/db.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings.local")
    os.environ["DEBUG"] = "false"  # no per-query bookkeeping while timing
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from inventory import services
    from inventory.access import Room
    from inventory.models import Agency
    from inventory.reconciliation import services as reconciliation
    from inventory.reconciliation.expected_file import read_expected_file
    from tests.inventory.reconciliation_helpers import csv_bytes, make_vin, xlsx_bytes

    call_command("migrate", verbosity=0)
    agency, _ = Agency.objects.get_or_create(name="Peugeot Querétaro")
    boss, _ = get_user_model().objects.get_or_create(
        username="bench-import", defaults={"is_staff": True, "is_superuser": True}
    )
    inventory = services.inventory_get_or_open(room=Room(agency, 10, 2025))

    header = ["No. de serie", "Stock", "Descripción", "Marca", "Modelo", "Año", "Color", "Ubicación"]
    rows = [header] + [
        [
            make_vin("3VWFE21C", f"{n:08d}"),
            f"S{n:05d}",
            f"Jetta {n}",
            "Volkswagen",
            "Jetta",
            2025,
            ("Blanco", "Gris", "Rojo")[n % 3],
            f"Patio {n % 7}",
        ]
        for n in range(args.rows)
    ]
    files = {"csv": csv_bytes(rows), "xlsx": xlsx_bytes(rows)}
    print(f"{args.rows} rows x {len(header)} columns; database {os.environ['DATABASE_URL'].split(':')[0]}")
    for kind, data in files.items():
        totals = []
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            parsed = read_expected_file(data, filename=f"stock.{kind}")
            read = time.perf_counter() - started
            started = time.perf_counter()
            result = reconciliation.expected_import_file(
                inventory=inventory, upload=data, filename=f"stock.{kind}", user=boss
            )
            total = time.perf_counter() - started
            assert not parsed.errors and result.imported == args.rows, (parsed.errors[:3], result.imported)
            totals.append(total)
            size = len(data) / 1024
            print(f"{kind:4} run {run}: {size:.0f} KB, read {read:.2f} s, whole import {total:.2f} s")
        print(f"{kind:4} median whole import: {statistics.median(totals):.2f} s")


if __name__ == "__main__":
    main()
