"""Builders shared by the reconciliation tests: valid VINs, CSV and XLSX files."""

from __future__ import annotations

import csv
import io

from inventory import vin


def make_vin(first8: str, last8: str) -> str:
    """A VIN with the right check digit from its other 16 characters."""
    draft = f"{first8}0{last8}"
    return f"{first8}{vin.check_digit(draft)}{last8}"


def csv_bytes(rows: list[list], *, delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list], *, title_rows: list[list] = ()) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in [*title_rows, *rows]:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def read_xlsx(data: bytes) -> dict[str, list[list]]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True)
    sheets = {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in workbook}
    workbook.close()
    return sheets


# The fixture inventory's books: two VINs found, one VIN and one barcode missing.
BOOKS = [
    ["No. de serie", "No. Stock", "Marca", "Modelo", "Año", "Color", "Ubicación"],
    ["1HGCM82633A004352", "S1", "Honda", "Accord", "2003", "Plata", "Patio A"],
    ["1M8GDM9AXKP042788", "S2", "Motor Coach", "MC-12", "2019", "Blanco", "Patio A"],
    ["11111111111111111", "S3", "Prueba", "Uno", "2011", "Rojo", "Patio B"],
    ["EXP-BARCODE-4", "S4", "Fiat", "500", "2024", "Azul", "Taller"],
]
