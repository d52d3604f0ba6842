"""Import a room's expected stock list from a CSV or XLSX file, replacing the previous one."""

from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from inventory import access, periods, services
from inventory.exceptions import InventoryError
from inventory.reconciliation import services as reconciliation_services
from inventory.reconciliation.errors import ImportRejected
from inventory.reconciliation.expected_file import FIELD_LABELS


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
            raise CommandError(_("No existe el archivo %(file)s.") % {"file": file})
        try:
            room = access.Room(
                agency=access.agency_find(agency),
                month=periods.parse_month(month),
                year=periods.parse_year(year),
            )
        except InventoryError as exc:
            raise CommandError(exc.message) from exc
        operator = None
        if user:
            operator = get_user_model().objects.filter(username=user).first()
            if operator is None:
                raise CommandError(_("No existe el usuario %(user)s.") % {"user": user})
        started = time.perf_counter()
        try:
            result = self._import(room, file, operator, show_progress=not no_progress)
        except ImportRejected as exc:
            for error in exc.errors:
                if error.line is None:
                    self.stderr.write(error.message)
                else:
                    self.stderr.write(
                        _("línea %(line)s: %(message)s") % {"line": error.line, "message": error.message}
                    )
            raise CommandError(exc.message) from exc
        except InventoryError as exc:
            raise CommandError(exc.message) from exc
        elapsed = time.perf_counter() - started
        progress = result.progress
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "%(room)s: %(count)s vehículos esperados importados (%(replaced)s reemplazados) en "
                    "%(seconds).2f s. Encontrados %(found)s, faltantes %(missing)s, no esperados "
                    "%(unexpected)s, VIN dudosos %(flagged)s."
                )
                % {
                    "room": room.key,
                    "count": result.imported,
                    "replaced": result.replaced,
                    "seconds": elapsed,
                    **progress,
                }
            )
        )
        labels = FIELD_LABELS()
        columns = ", ".join(f"{labels[name]} <- «{header}»" for name, header in result.columns.items())
        self.stdout.write(_("Columnas: %(columns)s") % {"columns": columns})
        if result.ignored:
            self.stdout.write(_("Columnas ignoradas: %(columns)s") % {"columns": ", ".join(result.ignored)})

    def _import(self, room, file: Path, operator, *, show_progress: bool):
        with file.open("rb") as data:  # read as a stream, never whole (the reader's limits)
            return self._import_from(room, data, file, operator, show_progress=show_progress)

    def _import_from(self, room, data, file: Path, operator, *, show_progress: bool):
        if not show_progress:
            return self._save(room, data, file.name, operator)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        labels = {"read": _("Leyendo"), "save": _("Guardando")}
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

            return self._save(room, data, file.name, operator, progress=report)

    def _save(self, room, data, filename: str, operator, *, progress=None):
        """Open the room's inventory and import into it, or neither: a refused import opens nothing."""
        with transaction.atomic():
            inventory = services.inventory_get_or_open(room=room)
            return reconciliation_services.expected_import_file(
                inventory=inventory, upload=data, filename=filename, user=operator, progress=progress
            )
