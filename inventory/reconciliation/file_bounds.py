"""What an uploaded expected list may cost to read, and reading it within that.

A hostile file is refused before it is parsed, with a message naming the limit: an XLSX archive
from its directory (expanded size, the shared strings a reader holds whole, compression ratio,
number of entries), a CSV line as it is read. The upload is read as a stream, never whole, and
the rows read wait in a temporary file until they are saved. The limits are the EXPECTED_IMPORT
setting (docs/reconciliation.md, "Limits: hostile files").
"""

from __future__ import annotations

import codecs
import io
import pickle
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _

# The EXPECTED_IMPORT setting's defaults (inventory_site/settings/base.py reads the environment).
DEFAULT_LIMITS = {
    "MAX_BYTES": 20 * 1024 * 1024,
    "MAX_ROWS": 100_000,
    "MAX_LINE_CHARS": 64 * 1024,
    "MAX_UNCOMPRESSED_BYTES": 64 * 1024 * 1024,
    "MAX_SHARED_STRINGS_BYTES": 16 * 1024 * 1024,
    "MAX_COMPRESSION_RATIO": 100,
    "MAX_ARCHIVE_ENTRIES": 1000,
}
RATIO_CHECKED_FROM = 1024 * 1024  # small parts compress oddly; a bomb is big by definition
CENTRAL_DIRECTORY_ENTRY_BYTES = 512  # generous: 46 bytes and a short name
READ_CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 4 * 1024 * 1024
SPOOL_BATCH = 1000


def limits() -> dict[str, int]:
    return {**DEFAULT_LIMITS, **getattr(settings, "EXPECTED_IMPORT", {})}


def megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    return number_format(int(value) if value.is_integer() else round(value, 1))


class RowSpool:
    """The rows read, kept in a temporary file (in memory while small) until they are saved.

    A file's size, not its number of rows, bounds what reading it costs in memory.
    """

    def __init__(self, row_type: Callable[..., Any]):
        self._row_type = row_type
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by close()
        self._pending: list[tuple] = []
        self._count = 0

    def append(self, row: Any) -> None:
        self._pending.append(tuple(vars(row).values()))  # the fields, in order
        self._count += 1
        if len(self._pending) >= SPOOL_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._pending = []

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def batches(self) -> Iterator[list[Any]]:
        """The rows in file order, a thousand at a time."""
        self._flush()
        self._file.seek(0)
        while True:
            try:
                # Our own file, written just above: never data from outside.
                batch = pickle.load(self._file)  # noqa: S301
            except EOFError:
                return
            yield [self._row_type(*values) for values in batch]

    def __iter__(self) -> Iterator[Any]:
        for batch in self.batches():
            yield from batch

    def close(self) -> None:
        self._file.close()


class TooLong(Exception):
    """A line of the file over the limit: the whole file is refused."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def archive_problem(stream: IO[bytes], size: int, bounds: dict[str, int]) -> str | None:
    """Why an XLSX archive is too big to open (a "zip bomb"), from its directory alone; or None.

    The central directory is checked before zipfile reads it (it makes one object per entry);
    then the sizes the entries declare, which zipfile holds each entry to when reading it.
    """
    max_entries = bounds["MAX_ARCHIVE_ENTRIES"]
    too_many = _("El archivo tiene más de %(max)s partes comprimidas.") % {"max": max_entries}
    directory = _central_directory(stream, size)
    if directory is not None:
        entries, directory_size = directory
        if entries > max_entries or directory_size > max_entries * CENTRAL_DIRECTORY_ENTRY_BYTES:
            return too_many
    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return _("El archivo no es un XLSX válido.")
    finally:
        stream.seek(0)
    if len(infos) > max_entries:
        return too_many
    expanded = sum(info.file_size for info in infos)
    if expanded > bounds["MAX_UNCOMPRESSED_BYTES"]:
        return _("El contenido del archivo descomprimido supera %(mb)s MB.") % {
            "mb": megabytes(bounds["MAX_UNCOMPRESSED_BYTES"])
        }
    strings = sum(info.file_size for info in infos if info.filename.lower().endswith("sharedstrings.xml"))
    if strings > bounds["MAX_SHARED_STRINGS_BYTES"]:
        return _("Los textos del archivo descomprimidos superan %(mb)s MB.") % {
            "mb": megabytes(bounds["MAX_SHARED_STRINGS_BYTES"])
        }
    ratio = bounds["MAX_COMPRESSION_RATIO"]
    for info in infos:
        if info.file_size >= RATIO_CHECKED_FROM and info.file_size > ratio * max(info.compress_size, 1):
            return _(
                "El archivo está comprimido más de %(ratio)s a 1: no parece una hoja de cálculo real."
            ) % {"ratio": ratio}
    return None


def _central_directory(stream: IO[bytes], size: int) -> tuple[int, int] | None:
    """The entry count and byte size of a zip's central directory, from its end record, or None."""
    tail_size = min(size, 22 + 65535)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    stream.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    entries, directory_size = struct.unpack("<HI", tail[at + 10 : at + 16])
    # A zip64 archive says 0xFFFF here: an expected list never needs 65,535 parts.
    return entries, directory_size


def csv_encoding(stream: IO[bytes]) -> tuple[str, int | None]:
    """How the CSV is encoded, and how many lines it has (None: nothing but blanks), in one pass.

    UTF-16 with a BOM (Excel's "Texto Unicode"), UTF-8 (with or without BOM), else Windows-1252,
    as Excel in Spanish saves CSV, else Latin-1 (which reads anything).
    """
    head = stream.read(2)
    stream.seek(0)
    candidates = ["utf-8-sig", "cp1252", "latin-1"]
    if head in (b"\xff\xfe", b"\xfe\xff"):
        candidates.insert(0, "utf-16")  # the BOM says which byte order, and is dropped
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)()
        lines, blank = 1, True
        try:
            while chunk := stream.read(READ_CHUNK):
                text = decoder.decode(chunk)
                lines += text.count("\n")
                blank = blank and not text.strip()
            text = decoder.decode(b"", final=True)
            blank = blank and not text.strip()
        except UnicodeDecodeError:
            continue
        finally:
            stream.seek(0)
        return encoding, None if blank else lines
    raise AssertionError("latin-1 decodes any byte")


class CappedLines:
    """The text's lines for csv.reader, refusing a line, or a record, longer than the limit.

    The caller resets `record` after each record, so that a quoted field spanning many short
    lines is held to the same limit as one long line.
    """

    def __init__(self, text: IO[str], max_chars: int):
        self.text = text
        self.max_chars = max_chars
        self.record = 0
        self.line = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.text.readline(self.max_chars + 2)  # the limit, and a line break
        if not line:
            raise StopIteration
        self.line += 1
        self.record += len(line.rstrip("\r\n"))
        if self.record > self.max_chars:
            raise TooLong(
                _("La línea %(line)s del archivo tiene más de %(max)s caracteres.")
                % {"line": self.line, "max": self.max_chars}
            )
        return line


def text_stream(stream: IO[bytes], encoding: str) -> io.TextIOWrapper:
    stream.seek(0)
    return io.TextIOWrapper(io.BufferedReader(_Unclosed(stream)), encoding=encoding, newline="")


class _Unclosed(io.RawIOBase):
    """The upload, read through a text wrapper that must not close it when it goes."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
