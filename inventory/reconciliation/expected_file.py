"""Read an expected stock list from CSV or XLSX: flexible headers, every bad row by line number.

Reading writes nothing: it returns the rows and the problems found, and the import service
refuses the whole file if there is any problem.

Reading is bounded (file_bounds.py): the file is read from its upload as a stream, an XLSX
archive is checked before it is opened, a CSV line and the number of rows are capped, and the
rows read wait on disk until they are saved.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from django.utils.translation import gettext as _

from inventory.models import CODE_MAX_LENGTH

from .errors import MAX_REPORTED_ERRORS, RowError
from .file_bounds import (
    CappedLines,
    RowSpool,
    TooLong,
    archive_problem,
    csv_encoding,
    limits,
    megabytes,
    text_stream,
)
from .matching import code_key

HEADER_SEARCH_ROWS = 10  # title lines above the header row are skipped
PROGRESS_EVERY = 500
MAX_COLUMNS = 256  # cells further right are never read (a sheet may claim 16,384 columns)

# Words that decorate a header without naming it: "No. de serie" is "serie".
FILLER_WORDS = frozenset(
    {
        "no",
        "n",
        "nro",
        "num",
        "numero",
        "number",
        "nr",
        "nbr",
        "de",
        "del",
        "la",
        "el",
        "los",
        "las",
        "the",
        "of",
    }
)
# Words that name the description alone but only qualify another field: "VIN del vehículo".
QUALIFIER_WORDS = frozenset({"vehiculo", "vehicle", "unidad"})
DELIMITERS = ";,\t|"

# Each field and the headers that name it, as normalized by header_key().
HEADER_ALIASES: dict[str, frozenset[str]] = {
    "code": frozenset(
        {
            "vin",
            "niv",
            "serie",
            "serial",
            "chasis",
            "chassis",
            "codigo",
            "code",
            "barcode",
            "codigobarras",
            "identificacionvehicular",
            "vehicleidentification",
        }
    ),
    "stock_number": frozenset(
        {"stock", "inventario", "inventory", "inv", "stockid", "economico", "unidadstock", "clavestock"}
    ),
    "description": frozenset(
        {"descripcion", "description", "desc", "vehiculo", "vehicle", "descripcionvehiculo", "unidad"}
    ),
    "make": frozenset({"marca", "make", "brand", "fabricante", "manufacturer"}),
    "model": frozenset({"modelo", "model"}),
    "year": frozenset({"ano", "anio", "year", "anomodelo", "modelyear", "yr"}),
    "color": frozenset({"color", "colour", "colorexterior", "exteriorcolor", "colorext"}),
    "location": frozenset(
        {"ubicacion", "location", "lugar", "patio", "zona", "lot", "sucursal", "ubicacionfisica"}
    ),
}
FIELD_MAX_LENGTH = {
    "code": CODE_MAX_LENGTH,
    "stock_number": 64,
    "description": 255,
    "make": 80,
    "model": 80,
    "color": 60,
    "location": 120,
}
MIN_YEAR, MAX_YEAR = 1900, 2100


def FIELD_LABELS() -> dict[str, str]:  # noqa: N802 - translated when used
    return {
        "code": _("VIN o código"),
        "stock_number": _("número de stock"),
        "description": _("descripción"),
        "make": _("marca"),
        "model": _("modelo"),
        "year": _("año"),
        "color": _("color"),
        "location": _("ubicación"),
    }


@dataclass(frozen=True)
class ExpectedRow:
    line: int
    code: str
    code_key: str
    stock_number: str = ""
    description: str = ""
    make: str = ""
    model: str = ""
    year: int | None = None
    color: str = ""
    location: str = ""

    def model_fields(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "code": self.code,
            "code_key": self.code_key,
            "stock_number": self.stock_number,
            "description": self.description,
            "make": self.make,
            "model": self.model,
            "year": self.year,
            "color": self.color,
            "location": self.location,
        }


@dataclass
class ParsedFile:
    rows: RowSpool = field(default_factory=lambda: RowSpool(ExpectedRow))
    # The first MAX_REPORTED_ERRORS problems; `error_count` and `error_lines` count them all.
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    error_lines: int = 0
    # field -> the header it was read from, and the headers that named no field.
    columns: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    header_line: int | None = None

    _last_error_line: int | None = field(default=None, repr=False)

    def add_error(self, error: RowError) -> None:
        if error.line is not None and error.line != self._last_error_line:
            self.error_lines += 1
            self._last_error_line = error.line
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


Progress = Callable[[int, int | None], None]


def header_words(text: Any) -> list[str]:
    """The words of a header without accents, case, punctuation or filler words."""
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char)).lower()
    # Initials written with dots are one word: "N.I.V." is "niv", "V.I.N." is "vin".
    plain = re.sub(r"\b[a-z](?:\.[a-z])+\b", lambda initials: initials.group().replace(".", ""), plain)
    return [word for word in re.findall(r"[a-z0-9]+", plain) if word not in FILLER_WORDS]


def header_key(text: Any) -> str:
    """Normalize a header: no accents, case, punctuation or filler words ("No. de Serie" -> "serie")."""
    return "".join(header_words(text))


def fields_named(header: Any) -> set[str]:
    """The fields a header names: one, none, or several for an ambiguous header ("VIN / Stock").

    The whole header is an alias ("Código de barras"), or else each of its words is an alias:
    "No. de Serie (VIN)" and "NIV (VIN)" name the code ("vehículo" or "unidad" next to another
    field's word only qualifies it: "VIN del vehículo"). A header with any other word names
    nothing, so that "Días en inventario" or "Serie del motor" are never taken for a field.
    """
    key = header_key(header)
    exact = {name for name, aliases in HEADER_ALIASES.items() if key in aliases}
    if exact or not key:
        return exact
    words = header_words(header)
    words = [word for word in words if word not in QUALIFIER_WORDS] or words
    named = set()
    for word in words:
        fields = {name for name, aliases in HEADER_ALIASES.items() if word in aliases}
        if not fields:
            return set()
        named |= fields
    return named


def field_for(header: Any) -> str | None:
    """The one field a header names, or None (it names none, or more than one)."""
    named = fields_named(header)
    return named.pop() if len(named) == 1 else None


def read_expected_file(
    upload: IO[bytes] | bytes, *, filename: str = "", progress: Progress | None = None
) -> ParsedFile:
    """Read a CSV or XLSX expected list; problems come back in `errors`, never as exceptions."""
    bounds = limits()
    stream = io.BytesIO(upload) if isinstance(upload, bytes) else getattr(upload, "file", upload)
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if size > bounds["MAX_BYTES"]:
        return _refused(_("El archivo supera %(mb)s MB.") % {"mb": megabytes(bounds["MAX_BYTES"])})
    head = stream.read(4)
    stream.seek(0)
    name = filename.lower()
    if head == b"\xd0\xcf\x11\xe0" or name.endswith(".xls"):
        return _refused(_("El formato .xls antiguo no se admite: guarda el archivo como .xlsx o .csv."))
    if head == b"PK\x03\x04":
        problem = archive_problem(stream, size, bounds)
        if problem:
            return _refused(problem)
        try:
            rows, total = _xlsx_rows(stream, bounds["MAX_ROWS"])
        except Exception:  # openpyxl raises many kinds of errors for a damaged file
            return _refused(_("El archivo no es un XLSX válido."))
    elif name.endswith((".xlsx", ".xlsm")):
        return _refused(_("El archivo no es un XLSX válido."))
    else:
        encoding, lines = csv_encoding(stream)
        if lines is None:
            return _refused(_("El archivo está vacío."))
        rows, total = _csv_rows(stream, encoding, bounds["MAX_LINE_CHARS"]), lines
    try:
        return _parse(rows, total=total, progress=progress, max_rows=bounds["MAX_ROWS"])
    except TooLong as exc:
        return _refused(exc.message)
    except Exception:  # a damaged sheet can fail half-way through, as it can on opening
        if head != b"PK\x03\x04":
            raise
        return _refused(_("El archivo no es un XLSX válido."))


def _refused(message: str) -> ParsedFile:
    parsed = ParsedFile()
    parsed.add_error(RowError(None, message))
    return parsed


def _csv_rows(stream: IO[bytes], encoding: str, max_chars: int) -> Iterator[tuple[int, Any]]:
    delimiter = _delimiter(CappedLines(text_stream(stream, encoding), max_chars))
    lines = CappedLines(text_stream(stream, encoding), max_chars)
    reader = csv.reader(lines, delimiter=delimiter)
    start = 1
    try:
        for values in reader:
            yield start, values
            start = reader.line_num + 1
            lines.record = 0
    except csv.Error as exc:
        yield start, exc


def _delimiter(lines: CappedLines) -> str:
    """The separator under which one of the first lines is a header naming the code column.

    Title lines may come first ("Reporte de existencias - Peugeot Querétaro"), so each of the
    first non-empty lines is tried with each separator it holds; on a line that is a header
    under several, the one that recognises most columns wins. With no header, the first line's
    most frequent separator, so that the error names the columns as the file has them.
    """
    first_lines = []
    for line in lines:
        lines.record = 0
        if line.strip():
            first_lines.append(line.rstrip("\r\n"))
        if len(first_lines) >= HEADER_SEARCH_ROWS:
            break
    for line in first_lines:
        best, recognised = None, 0
        for delimiter in [d for d in DELIMITERS if d in line] or [","]:
            cells = next(csv.reader([line], delimiter=delimiter), [])
            columns = _header_columns([cell.strip() for cell in cells])[0]
            if "code" in columns and len(columns) > recognised:
                best, recognised = delimiter, len(columns)
        if best is not None:
            return best
    first = first_lines[0] if first_lines else ""
    return max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","


def _xlsx_rows(stream: IO[bytes], max_rows: int) -> tuple[Iterator[tuple[int, Any]], int | None]:
    from openpyxl import load_workbook

    workbook = load_workbook(stream, read_only=True, data_only=True)
    sheet = workbook.worksheets[0]
    total = sheet.max_row
    # The size the sheet declares is only a claim: a reader pads every row to its width, so at
    # most MAX_COLUMNS are read; and rows are counted as they come, blank ones too, because a
    # sheet may number its next row 10**9 and a reader yields every blank row in between.
    columns = min(sheet.max_column or MAX_COLUMNS, MAX_COLUMNS)
    max_sheet_rows = 2 * max_rows + HEADER_SEARCH_ROWS

    def rows():
        try:
            cells = sheet.iter_rows(min_row=1, max_col=columns, values_only=True)
            for number, values in enumerate(cells, start=1):
                if number > max_sheet_rows:
                    raise TooLong(_("La hoja tiene más de %(max)s filas.") % {"max": max_sheet_rows})
                yield number, values
        finally:
            workbook.close()

    return rows(), total if total and total <= max_sheet_rows else None


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _parse(
    rows: Iterable[tuple[int, Any]], *, total: int | None, progress: Progress | None, max_rows: int
) -> ParsedFile:
    parsed = ParsedFile()
    columns: dict[str, int] | None = None
    seen: dict[str, int] = {}
    ambiguous: list[str] = []
    searched = 0
    count = 0
    for line, values in rows:
        if isinstance(values, Exception):
            parsed.add_error(RowError(line, _("El CSV está mal formado: %(error)s") % {"error": values}))
            break
        if values.count(None) + values.count("") == len(values):
            continue  # cheap: a sheet may hold many blank rows
        cells = [_cell_text(value) for value in values]
        if not any(cells):
            continue
        if columns is None:
            found, ignored, named_several = _header_columns(cells)
            if "code" in found:
                columns = found
                parsed.columns = {name: cells[position] for name, position in found.items()}
                parsed.ignored = ignored
                parsed.header_line = line
                continue
            ambiguous.extend(named_several)
            searched += 1
            if searched >= HEADER_SEARCH_ROWS:
                break
            continue
        count += 1
        if count > max_rows:
            parsed.add_error(RowError(line, _("El archivo tiene más de %(max)s filas.") % {"max": max_rows}))
            break
        row = _row(line, cells, columns, seen, parsed)
        if row is not None:
            parsed.rows.append(row)
        if progress and count % PROGRESS_EVERY == 0:
            progress(line, total)
    if columns is None and not parsed.errors and ambiguous:
        parsed.add_error(_ambiguous_header(ambiguous[0]))
    elif columns is None and not parsed.errors:
        parsed.add_error(
            RowError(
                None,
                _(
                    "No se encontró la columna del VIN o código: el encabezado debe tener una columna "
                    "como «VIN», «Serie», «No. de serie» o «Código»."
                ),
            )
        )
    elif columns is not None and not parsed.rows and not parsed.errors:
        parsed.add_error(RowError(None, _("El archivo no tiene vehículos bajo el encabezado.")))
    if progress:
        progress(total or count, total)
    return parsed


def _header_columns(cells: list[str]) -> tuple[dict[str, int], list[str], list[str]]:
    """Fields to column positions, the headers that name no field, and those naming the code and more."""
    found: dict[str, int] = {}
    ignored: list[str] = []
    ambiguous: list[str] = []
    for position, cell in enumerate(cells):
        if not cell:
            continue
        named = fields_named(cell)
        name = next(iter(named)) if len(named) == 1 else None
        if name is None or name in found:
            ignored.append(cell)
            if len(named) > 1 and "code" in named:
                ambiguous.append(cell)
        else:
            found[name] = position
    return found, ignored, ambiguous


def _ambiguous_header(header: str) -> RowError:
    labels = FIELD_LABELS()
    fields = ", ".join(labels[name] for name in HEADER_ALIASES if name in fields_named(header))
    return RowError(
        None,
        _(
            "No se encontró la columna del VIN o código: el encabezado «%(header)s» nombra varios "
            "campos (%(fields)s); usa una columna para cada uno."
        )
        % {"header": header, "fields": fields},
    )


def _row(
    line: int, cells: list[str], columns: dict[str, int], seen: dict[str, int], parsed: ParsedFile
) -> ExpectedRow | None:
    values = {name: cells[pos] if pos < len(cells) else "" for name, pos in columns.items()}
    # Descriptions may wrap inside a cell; the code is taken exactly as the scanner will read it.
    values = {name: value if name == "code" else " ".join(value.split()) for name, value in values.items()}
    problems = []
    code = values.get("code", "")
    if not code:
        problems.append(_("Falta el VIN o código."))
    elif not code.isprintable():
        problems.append(_("El código solo puede tener caracteres imprimibles."))
    for name, limit in FIELD_MAX_LENGTH.items():
        if len(values.get(name, "")) > limit:
            problems.append(
                _("El campo %(field)s tiene más de %(max)s caracteres.")
                % {"field": FIELD_LABELS()[name], "max": limit}
            )
    year = None
    if values.get("year"):
        year = _year(values["year"])
        if year is None:
            problems.append(_("El año «%(value)s» no es válido.") % {"value": values["year"]})
    key = code_key(code)
    if code and key in seen:
        problems.append(
            _("El código %(code)s está repetido (ya aparece en la línea %(line)s).")
            % {"code": code, "line": seen[key]}
        )
    if code and key not in seen:
        seen[key] = line  # even on a bad row, so that a later copy is reported too
    if problems:
        for problem in problems:
            parsed.add_error(RowError(line, problem))
        return None
    return ExpectedRow(
        line=line,
        code=code,
        code_key=key,
        stock_number=values.get("stock_number", ""),
        description=values.get("description", ""),
        make=values.get("make", ""),
        model=values.get("model", ""),
        year=year,
        color=values.get("color", ""),
        location=values.get("location", ""),
    )


def _year(value: str) -> int | None:
    text = value.strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not (text.isdigit() and len(text) == 4):
        return None
    year = int(text)
    return year if MIN_YEAR <= year <= MAX_YEAR else None
