"""The variance report as downloads: CSV (one row per vehicle) and XLSX (summary, detail, people).

Both are streamed: rows come from the database a chunk at a time (`report.detail_items`); the CSV
goes out as it is written, the XLSX is written row by row to a temporary file (openpyxl's
write-only mode) and sent from there. Memory stays bounded whatever the size of the lists.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from inventory.models import Inventory

# OWASP's CSV injection advice: no cell may start like a formula, nor any part of a cell that a
# reader splitting on another separator (";" in Spain and much of Europe, tab, "|", a line
# break) would take for a cell of its own: quoting does not protect there, as such a reader
# ignores quotes in mid-field. A quote goes before the formula character (spaces kept).
FORMULA_START = re.compile(r"(^|[,;|\t\r\n\x0b\x0c])( *)(?=[=+\-@\t\r])")
# What XML 1.0, and so openpyxl, refuses in a cell (ASCII controls but tab and line breaks):
# one in a note or a name made the whole XLSX a 500. Dropped from both downloads.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"  # Excel's number format: a real date that sorts
CSV_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # what Excel reads back as a date from a CSV


def KIND_LABELS() -> dict[str, str]:  # noqa: N802 - translated when used
    # "VIN dudoso" alone is also the lowercase match label of a scan ("doubtful VIN"); here it
    # heads a row like "Found" and "Missing", so it has its own context.
    return {
        "found": _("Encontrado"),
        "missing": _("Faltante"),
        "unexpected": _("No esperado"),
        "flagged": pgettext("variance kind", "VIN dudoso"),
    }


def local_time(value: str | None) -> datetime | None:
    """A report's ISO UTC time as a naive datetime in the project's time zone, as spreadsheets want."""
    if not value:
        return None
    moment = parse_datetime(value)
    return timezone.localtime(moment).replace(tzinfo=None) if moment else None


def detail_header() -> list[str]:
    return [
        _("Estado"),
        _("VIN o código"),
        _("No. de stock"),
        _("Descripción"),
        _("Marca"),
        _("Modelo"),
        _("Año"),
        _("Color"),
        _("Ubicación"),
        _("Escaneado por"),
        _("Escaneado el"),
        _("Motivo"),
        _("Nota"),
        _("Explicado por"),
    ]


def detail_rows(items: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    """A row for each vehicle of the report (`report.detail_items`): found, missing, then scans."""
    labels = KIND_LABELS()
    return (
        [
            labels[item["kind"]],
            item["code"],
            item.get("stockNumber", ""),
            item.get("description", ""),
            item.get("make", ""),
            item.get("model", ""),
            item.get("year") or "",
            item.get("color", ""),
            item.get("location", ""),
            item.get("user") or "",
            local_time(item.get("timestamp")) or "",
            item.get("reasonLabel") or "",
            item.get("note") or "",
            item.get("explainedBy") or "",
        ]
        for item in items
    )


def summary_rows(report: dict[str, Any]) -> list[list[Any]]:
    figures = report["figures"]
    room = report["inventory"]
    minutes = round(report["durationSeconds"] / 60) if report["durationSeconds"] is not None else ""
    rows = [
        [_("Agencia"), room["agency"]],
        [_("Mes"), int(room["month"])],
        [_("Año"), room["year"]],
        [_("Estado"), str(capfirst(Inventory.Status(room["status"]).label))],
        [_("Abierto el"), local_time(room["openedAt"])],
        [_("Primer escaneo"), local_time(report["startedAt"]) or ""],
        [_("Fin"), local_time(report["endedAt"]) or ""],
        [_("Duración (minutos)"), minutes],
        [_("Completado por"), room["completedBy"] or ""],
        [_("Esperados"), figures["expected"]],
        [_("Contados"), figures["counted"]],
        [_("Encontrados"), figures["found"]],
        [_("Faltantes"), figures["missing"]],
        [_("No esperados"), figures["unexpected"]],
        [_("VIN dudosos"), figures["flagged"]],
        [_("Duplicados rechazados"), figures["duplicatesRefused"]],
        [_("Diferencias explicadas"), figures["explained"]],
        [_("Diferencias sin explicar"), figures["unexplained"]],
    ]
    rows.extend(
        [_("Motivo: %(reason)s") % {"reason": reason["label"]}, reason["count"]]
        for reason in report["reasons"]
    )
    return rows


def people_header() -> list[str]:
    return [
        _("Persona"),
        _("Escaneos"),
        _("Encontrados"),
        _("No esperados"),
        _("VIN dudosos"),
        _("Duplicados rechazados"),
    ]


def people_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            person["userName"],
            person["scans"],
            person["found"],
            person["unexpected"],
            person["flagged"],
            person["duplicatesRefused"],
        ]
        for person in report["counters"]
    ]


def _printable(value: Any) -> Any:
    return CONTROL_CHARACTERS.sub("", value) if isinstance(value, str) else value


def _inert(value: Any) -> Any:
    """Text that a spreadsheet would take for a formula, at its start or after a separator, as text."""
    if isinstance(value, str):
        return FORMULA_START.sub(r"\1\2'", value)
    return value


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime(CSV_DATETIME_FORMAT)
    return _inert(_printable(value))


CSV_ROWS_PER_CHUNK = 500
FILE_CHUNK = 64 * 1024


def report_csv(summary: dict[str, Any], items: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """UTF-8 with a BOM, so that Excel opens accents correctly; a few hundred rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(detail_header())
    for number, row in enumerate(detail_rows(items), start=1):
        writer.writerow([_csv_value(value) for value in row])
        if number % CSV_ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def report_xlsx(summary: dict[str, Any], items: Iterable[dict[str, Any]]) -> IO[bytes]:
    """The workbook in a temporary file, at its start; openpyxl writes each sheet as rows come."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)

    def cell(worksheet, value, *, header=False):
        value = _printable(value)
        # Plain values are appended as they are; a cell object only where the type must be said.
        if (
            not header
            and not isinstance(value, datetime)
            and not (isinstance(value, str) and value[:1] == "=")
        ):
            return value
        item = WriteOnlyCell(worksheet, value=value)
        if isinstance(value, str) and value.startswith("="):
            item.data_type = "s"  # text, never a formula
        if isinstance(value, datetime):
            item.number_format = DATETIME_FORMAT
        if header:
            item.font = bold
        return item

    def sheet(title, header, rows):
        worksheet = workbook.create_sheet(title)
        if header:
            worksheet.append([cell(worksheet, name, header=True) for name in header])
        for row in rows:
            worksheet.append([cell(worksheet, value) for value in row])

    sheet(_("Resumen"), None, summary_rows(summary))
    sheet(_("Detalle"), detail_header(), detail_rows(items))
    sheet(_("Personas"), people_header(), people_rows(summary))
    output = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it
    workbook.save(output)
    output.seek(0)
    return output


def file_chunks(file: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := file.read(FILE_CHUNK):
            yield chunk
    finally:
        file.close()


def streamed(chunks: Iterator[bytes], request) -> Iterator[bytes] | AsyncIterator[bytes]:
    """The chunks as the server wants them: under ASGI, Django reads a plain iterator whole into
    a list before sending it, so there they are pulled one by one, in the request's own thread
    (its database connection); under WSGI, as they are."""
    if not isinstance(getattr(request, "_request", request), ASGIRequest):
        return chunks
    pull = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)

    async def pulled():
        while (chunk := await pull()) is not None:
            yield chunk

    return pulled()
