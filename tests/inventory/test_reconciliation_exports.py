"""The report's downloads as a user opens them: translated labels, real numbers and local times."""

import csv
import io
import json
from datetime import datetime

import pytest

from inventory import services
from inventory.access import Room
from inventory.reconciliation import services as reconciliation

from .reconciliation_helpers import BOOKS, csv_bytes

pytestmark = pytest.mark.django_db

BOOK_CODES = [row[0] for row in BOOKS[1:]]


@pytest.fixture
def mexico_time(settings):
    settings.TIME_ZONE = "America/Mexico_City"  # UTC-6 all year since 2022


@pytest.fixture
def counted(alfa, ana, luis):
    """Alfa Romeo 11/2025: four vehicles in the books; two found, one unexpected, one misread VIN."""
    inventory = services.inventory_get_or_open(room=Room(alfa, 11, 2025))
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="libros.csv")
    for user, code, at in [
        (ana, "1hgcm82633a004352", "2025-11-30T15:00:00Z"),
        (luis, "1M8GDM9AXKP042788", "2025-11-30T15:05:00Z"),
        (ana, "UNLISTED-1", "2025-11-30T15:10:00Z"),
        (luis, "1M8GDM9AKKP042788", "2025-11-30T15:30:00Z"),
    ]:
        services.scan_record(inventory=inventory, user=user, code=code, scanned_at=at)
    return inventory


def xlsx_cells(data: bytes) -> dict[str, list[list]]:
    """Every sheet's cells (values and number formats), as a spreadsheet holds them."""
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data))
    return {sheet.title: [list(row) for row in sheet.iter_rows()] for sheet in workbook}


def download(api_for, user, inventory, tail, *, language="es"):
    response = api_for(user).get(f"/api/inventories/{inventory.pk}/{tail}", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.getvalue()


def test_the_xlsx_summary_has_the_translated_status_a_numeric_month_and_local_dates(
    api_for, counted, luis, staff, mexico_time
):
    summary = {
        row[0].value: row[1] for row in xlsx_cells(download(api_for, luis, counted, "report.xlsx"))["Resumen"]
    }
    assert summary["Estado"].value == "Abierto"
    assert summary["Mes"].value == 11 and summary["Año"].value == 2025
    assert summary["Primer escaneo"].value == datetime(2025, 11, 30, 9, 0)  # 15:00 UTC in Mexico City
    assert summary["Fin"].value == datetime(2025, 11, 30, 9, 30)
    assert isinstance(summary["Abierto el"].value, datetime)
    assert all(summary[name].is_date for name in ("Abierto el", "Primer escaneo", "Fin"))
    services.inventory_complete(inventory=counted, user=staff)
    summary = {
        row[0].value: row[1] for row in xlsx_cells(download(api_for, luis, counted, "report.xlsx"))["Resumen"]
    }
    assert summary["Estado"].value == "Completado"


def test_the_xlsx_detail_has_scan_times_as_local_dates_that_sort(api_for, counted, luis, mexico_time):
    detail = xlsx_cells(download(api_for, luis, counted, "report.xlsx"))["Detalle"]
    column = [cell.value for cell in detail[0]].index("Escaneado el")
    times = {row[1].value: row[column] for row in detail[1:]}
    assert times["1HGCM82633A004352"].value == datetime(2025, 11, 30, 9, 0)
    assert times["1HGCM82633A004352"].is_date
    assert times["UNLISTED-1"].value == datetime(2025, 11, 30, 9, 10)
    assert times["11111111111111111"].value is None  # missing: never scanned


def test_the_csv_has_scan_times_in_local_time_as_excel_reads_them(api_for, counted, luis, mexico_time):
    content = download(api_for, luis, counted, "report.csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    by_code = {row[1]: row for row in rows[1:]}
    assert by_code["1HGCM82633A004352"][10] == "2025-11-30 09:00:00"


def test_every_status_label_is_capitalised_in_english(api_for, counted, luis):
    content = download(api_for, luis, counted, "report.csv", language="en").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][0] == "Status"  # the English download
    labels = {row[0] for row in rows[1:]}
    assert len(labels) == 4 and {"Found", "Missing", "Unexpected"} < labels
    assert all(label[0].isupper() for label in labels), labels


def test_a_blind_counter_downloads_no_code_of_the_books(api_for, counted, alfa, luis):
    alfa.blind_count = True
    alfa.save()
    services.scan_record(inventory=counted, user=luis, code="EXP-BARCODE-4")  # found by the counter himself
    csv_text = download(api_for, luis, counted, "report.csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(csv_text)))[1:]
    # Every unexpected and flagged scan, whoever made it; no vehicle of the books, found or missing.
    assert sorted((row[0], row[1]) for row in rows) == [
        ("No esperado", "UNLISTED-1"),
        ("VIN dudoso", "1M8GDM9AKKP042788"),
    ]
    sheets = xlsx_cells(download(api_for, luis, counted, "report.xlsx"))
    xlsx_text = json.dumps(
        [[cell.value for cell in row] for rows in sheets.values() for row in rows], default=str
    )
    report_text = download(api_for, luis, counted, "report/").decode()
    for code in BOOK_CODES:
        for text in (csv_text, xlsx_text, report_text):
            assert code.upper() not in text.upper(), code
    assert json.loads(report_text)["figures"]["found"] == 3  # the figures stay visible


# Exports never break and never execute (OWASP CSV injection; openpyxl refuses control characters).

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_CODES = [
    "x;=cmd|'/C calc'!A0;",  # Excel in Spain splits on ";" and ignores quotes mid-field
    "y,+SUM(1;2)",
    "z; @A1",
    "w;  =1+1",
    "-2+3",
    "v|=HYPERLINK(1)",
]


@pytest.fixture
def hostile(alfa, ana, staff, make_user):
    """Formula-like text and control characters in every kind of field a download holds."""
    alfa.name = "Alfa\x0b Romeo;=1+1"
    alfa.save()
    evil = make_user("evil", first_name="=Eve\x01", last_name="@x;-1", agencies=[alfa])
    inventory = services.inventory_get_or_open(room=Room(alfa, 11, 2025))
    books = [
        ["VIN", "Descripción", "Ubicación", "Color"],
        ["BOOK-1", "Auto\x01 rojo;=1+1", "Patio,@A", "+Azul"],
        ["BOOK-2", "Camioneta\x02", "Patio\x1f B", "\x01=1+2"],
    ]
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(books), filename="a.csv")
    for code in HOSTILE_CODES:
        services.scan_record(inventory=inventory, user=evil, code=code)
    services.scan_record(inventory=inventory, user=ana, code="BOOK-1")
    reconciliation.variance_explain(
        inventory=inventory, user=staff, code="BOOK-2", reason="other", note="nota\x01\x0b;=cmd|'/C calc'!A0"
    )
    reconciliation.variance_explain(
        inventory=inventory, user=staff, code=HOSTILE_CODES[0], reason="misread", note="\x0c@foo,-1"
    )
    services.inventory_complete(inventory=inventory, user=evil)
    return inventory


def test_the_csv_has_no_cell_that_starts_a_formula_however_a_reader_splits_it(api_for, hostile, staff):
    text = download(api_for, staff, hostile, "report.csv").decode("utf-8-sig")
    assert "cmd|'/C calc'!A0" in text and "nota" in text  # the values are there, inert
    for line in text.splitlines():
        for separator in (";", ",", "\t", "|"):
            for cell in line.split(separator):
                assert not cell.startswith(FORMULA_STARTS), (separator, cell, line)
    # Read properly, each cell still says what was typed, behind a quote where it had to be.
    codes = {row[1] for row in csv.reader(io.StringIO(text))}
    assert "x;'=cmd|'/C calc'!A0;" in codes and "'-2+3" in codes


def test_the_xlsx_opens_with_control_characters_in_every_kind_of_field(api_for, hostile, staff):
    sheets = xlsx_cells(download(api_for, staff, hostile, "report.xlsx"))
    values = [cell.value for rows in sheets.values() for row in rows for cell in row]
    text = json.dumps(values, default=str)
    assert "Auto rojo" in text and "Camioneta" in text and "Alfa Romeo" in text and "Eve" in text
    assert not any(isinstance(value, str) and not value.isprintable() for value in values), values
    formulas = [cell for rows in sheets.values() for row in rows for cell in row if cell.data_type == "f"]
    assert formulas == []


# Downloads are streamed: a 100,000-vehicle report is never built whole in memory.


@pytest.mark.parametrize("tail", ["report.csv", "report.xlsx", "report/?format=csv", "report/?format=xlsx"])
def test_downloads_are_streamed_with_their_file_name(api_for, counted, luis, tail):
    response = api_for(luis).get(f"/api/inventories/{counted.pk}/{tail}")
    assert response.status_code == 200
    assert response.streaming
    kind = "csv" if "csv" in tail else "xlsx"
    assert response["Content-Disposition"] == f'attachment; filename="diferencias-alfa-romeo-2025-11.{kind}"'
    body = b"".join(response.streaming_content)
    if kind == "csv":
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert len(rows) == 1 + 6 and rows[0][0] == "Estado"  # header, 2 found, 2 missing, 2 scans
    else:
        assert xlsx_cells(body)["Detalle"][0][0].value == "Estado"


def test_options_on_a_download_describes_it_in_json(api_for, counted, luis):
    response = api_for(luis).options(f"/api/inventories/{counted.pk}/report.csv")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json()["name"]
