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


SPREADSHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_TYPES = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SHEET_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def xlsx_bomb(expanded: int) -> bytes:
    """A valid XLSX (header VIN, one row) whose one code is a shared string of `expanded` bytes.

    As Excel saves it, the cells point into xl/sharedStrings.xml, which a reader loads whole.
    Deflate packs the repeated letter about 1000:1, so 200 MiB of text travel as ~200 KiB; the
    string is written in chunks, so building the file costs the test no memory.
    """
    import zipfile

    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"'
            "/>"
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{SHEET_MIME}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_MIME}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SHEET_MIME}.sharedStrings+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{PACKAGE_RELS_NS}"><Relationship Id="rId1" '
            f'Type="{OFFICE_TYPES}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{SPREADSHEET_NS}" xmlns:r="{RELATIONSHIPS_NS}"><sheets>'
            '<sheet name="Lista" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PACKAGE_RELS_NS}">'
            f'<Relationship Id="rId1" Type="{OFFICE_TYPES}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{OFFICE_TYPES}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{SPREADSHEET_NS}"><sheetData>'
            '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row>'
            "</sheetData></worksheet>"
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for name, text in parts.items():
            bomb.writestr(name, text)
        with bomb.open("xl/sharedStrings.xml", "w", force_zip64=True) as strings:
            strings.write(f'<sst xmlns="{SPREADSHEET_NS}"><si><t>VIN</t></si><si><t>'.encode())
            chunk = b"A" * (1024 * 1024)
            for _ in range(expanded // len(chunk)):
                strings.write(chunk)
            strings.write(b"</t></si></sst>")
    return buffer.getvalue()


def zip_with_entries(count: int) -> bytes:
    """A zip (named .xlsx) with `count` tiny entries: a central directory bomb."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number in range(count):
            archive.writestr(f"{number}", b"")
    return buffer.getvalue()
