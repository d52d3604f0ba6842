"""The variance report as downloads: CSV (one row per vehicle) and XLSX (summary, detail, people)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from inventory.models import Inventory

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
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


def detail_rows(report: dict[str, Any]) -> list[list[Any]]:
    """Every vehicle of the report: found, missing, then unexpected and flagged scans."""
    labels = KIND_LABELS()
    items = [*(report["found"] or []), *(report["missing"] or []), *report["unexpected"]]
    return [
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
            item.get("scannedBy") or "",
            local_time(item.get("scannedAt")) or "",
            item.get("reasonLabel") or "",
            item.get("note") or "",
            item.get("explainedBy") or "",
        ]
        for item in items
    ]


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


def _inert(value: Any) -> Any:
    """A text cell that a spreadsheet would take for a formula is kept as text."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime(CSV_DATETIME_FORMAT)
    return _inert(value)


def report_csv(report: dict[str, Any]) -> bytes:
    """UTF-8 with a BOM, so that Excel opens accents correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(detail_header())
    writer.writerows([_csv_value(value) for value in row] for row in detail_rows(report))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def report_xlsx(report: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)

    def cell(worksheet, value, *, header=False):
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

    sheet(_("Resumen"), None, summary_rows(report))
    sheet(_("Detalle"), detail_header(), detail_rows(report))
    sheet(_("Personas"), people_header(), people_rows(report))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
