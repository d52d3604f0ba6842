"""Import a room's expected stock list from a CSV or XLSX file, replacing the previous one."""

from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from inventory import rooms, services
from inventory.exceptions import InventoryError
from inventory.reconciliation import services as reconciliation_services
from inventory.reconciliation.errors import ImportRejected


class Command(BaseCommand):
    help = (
        "Import the expected stock list of AGENCY MONTH YEAR from a CSV or XLSX FILE. It replaces the "
        "previous list; a file with any bad row is refused whole, with each problem by line number."
    )

    def add_arguments(self, parser):
        parser.add_argument("agency", help="Agency name (any case) or slug.")
        parser.add_argument("month", help="1-12.")
        parser.add_argument("year", help="2000-2100.")
        parser.add_argument("file", type=Path, help="A .csv or .xlsx file with a header row.")
        parser.add_argument("--user", help="Username to check as a manager of the agency (default: none).")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw the progress bar.")

    def handle(self, *args, agency, month, year, file: Path, user=None, no_progress=False, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            room = rooms.Room(
                agency=rooms.agency_find(agency), month=rooms.parse_month(month), year=rooms.parse_year(year)
            )
        except InventoryError as exc:
            raise CommandError(exc.message) from exc
        operator = None
        if user:
            operator = get_user_model().objects.filter(username=user).first()
            if operator is None:
                raise CommandError(f"No such user: {user}")
        inventory = services.inventory_get_or_open(room=room)
        started = time.perf_counter()
        try:
            result = self._import(inventory, file, operator, show_progress=not no_progress)
        except ImportRejected as exc:
            for error in exc.errors:
                where = f"line {error.line}: " if error.line is not None else ""
                self.stderr.write(f"{where}{error.message}")
            raise CommandError(exc.message) from exc
        except InventoryError as exc:
            raise CommandError(exc.message) from exc
        elapsed = time.perf_counter() - started
        progress = result.progress
        self.stdout.write(
            self.style.SUCCESS(
                f"{room.key}: imported {result.imported} expected vehicles "
                f"({result.replaced} replaced) in {elapsed:.2f}s. "
                f"Found {progress['found']}, missing {progress['missing']}, "
                f"unexpected {progress['unexpected']}, flagged {progress['flagged']}."
            )
        )
        columns = ", ".join(f"{name} <- {header!r}" for name, header in result.columns.items())
        self.stdout.write(f"Columns: {columns}")
        if result.ignored:
            self.stdout.write(f"Ignored columns: {', '.join(result.ignored)}")

    def _import(self, inventory, file: Path, operator, *, show_progress: bool):
        data = file.read_bytes()
        if not show_progress:
            return reconciliation_services.expected_import_file(
                inventory=inventory, upload=data, filename=file.name, user=operator
            )
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        labels = {"read": "Reading", "save": "Saving"}
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.stderr._out),
            transient=False,
        ) as bar:
            tasks = {}

            def report(stage: str, done: int, total: int | None):
                if stage not in tasks:
                    tasks[stage] = bar.add_task(labels[stage], total=total)
                bar.update(tasks[stage], completed=done, total=total)

            return reconciliation_services.expected_import_file(
                inventory=inventory, upload=data, filename=file.name, user=operator, progress=report
            )
