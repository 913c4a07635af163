"""The cell rows of the report's table sheets, as SpreadsheetML, written as fast as they come.

XlsxWriter writes the workbook: styles, column widths, frozen and filtered headers, conditional
formats, the chart, the package. Only the data rows of the large sheets (Files, Findings, Series,
Dataset, Changes) are written here, into a temporary file each, and spliced into XlsxWriter's sheet
after its header row when the workbook is closed (:func:`splice`). Measured on the packaged rules'
rows: XlsxWriter takes 280 us per Files row, this 60 us; on two busy cores XlsxWriter's rows
added 40 % to a 20,000-file run. The rows are the ones XlsxWriter writes for the same values
(``tests/test_workbook_faithful.py`` compares them): inline strings, numbers, booleans, a
wrapped column's style, a multi-line row's height.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from typing import IO

from xlsxwriter.utility import xl_col_to_name

from pytest_dicomqc.record import Scalar

MAX_TEXT = 32_767
"""Characters a cell holds; longer text is cut, visibly."""
TRUNCATED = "…[truncated]"
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
WRAP_STYLE = b' s="W"'
"""Placeholder of a wrapped column's style in the rows file: its number is known only once
XlsxWriter has written the sheet. ``"`` is escaped in text, so no text can look like it."""
LINE_HEIGHT = 15
MAX_LINES = 12
"""A wrapped cell's row grows to this many lines at most; the cell holds the rest."""
_ESCAPE_LIKE = re.compile("_(x[0-9A-Fa-f]{4}_)")  # Excel reads "_x0041_" as "A": escape its "_"
_PLAIN = re.compile(r"(?!\s)[^&<>\"]*(?<!\s)")
"""Printable ASCII text that goes into a cell as it is: nothing to escape, no space at either end
(which would need ``xml:space``); ``_x`` is checked apart."""
_COL_STYLE = re.compile(rb'<col min="(\d+)" max="(\d+)"[^>]*? style="(\d+)"')


def clean_text(value: str) -> str:
    """Text as a cell can hold it: no characters XML forbids, no lone surrogates, cut at the
    cell limit with a visible mark."""
    if value.isascii() and value.isprintable():  # nearly every value: no regular expression
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - len(TRUNCATED)] + TRUNCATED
    text = _ILLEGAL_XML.sub("", value)
    if text.isascii():
        return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - len(TRUNCATED)] + TRUNCATED
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    if len(text) * 2 <= MAX_TEXT:
        return text  # within the limit however many UTF-16 units each character takes
    units = text.encode("utf-16-le")  # Excel counts the limit in UTF-16 units: an emoji is two
    if len(units) <= 2 * MAX_TEXT:
        return text
    return units[: 2 * (MAX_TEXT - len(TRUNCATED))].decode("utf-16-le", "ignore") + TRUNCATED


LARGEST_NUMBER = 10**308
"""Beyond this a value is no number a cell can hold (a 400-digit IS): it is written as text."""


def cell_text(value: Scalar) -> str:
    """A value that is no number, as a cell's text (:func:`clean_text`); an integer too long for
    Python to print (over 4,300 digits) says so."""
    try:
        return clean_text(str(value))
    except ValueError:
        return f"<integer of about {value.bit_length() * 0.30103:.0f} digits>" if type(value) is int else "?"


def is_number(value: Scalar) -> bool:
    """Whether ``value`` goes in as a number: an int or finite float a double can hold."""
    if type(value) is int:
        return -LARGEST_NUMBER < value < LARGEST_NUMBER
    return type(value) is float and math.isfinite(value)


class RowsFile:
    """The data rows of one sheet (below its header row), in a temporary file."""

    def __init__(self, columns: int, wrapped: set[int]) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="dicomqc-rows-")  # noqa: SIM115 - see close()
        self.letters = [xl_col_to_name(index) for index in range(columns)]
        self.wrapped = wrapped
        self.rows = 0
        self._chunk: list[str] = []
        self._opens = [
            (f'<c r="{letter}', ' s="W"' if index in wrapped else "") for index, letter in enumerate(self.letters)
        ]
        """Per column: the cell's start before its row number, and its style attribute."""

    def write(self, row: int, values: Sequence[Scalar]) -> None:
        """``values`` as row ``row`` (0-based, as XlsxWriter counts): text (:func:`clean_text`),
        numbers, booleans; empty cells left out. Plain short text, and numbers a double holds,
        take a path of their own: most cells are one or the other."""
        number = row + 1
        cells = []
        lines = 1
        for (start, style), value in zip(self._opens, values, strict=False):
            kind = type(value)
            if isinstance(value, str):
                if not value:
                    continue
                plain = value.isascii() and value.isprintable() and len(value) <= MAX_TEXT and "_x" not in value
                if plain and _PLAIN.fullmatch(value):
                    cells.append(f'{start}{number}"{style} t="inlineStr"><is><t>{value}</t></is></c>')
                    continue
            elif kind is int and -LARGEST_NUMBER < value < LARGEST_NUMBER:  # type: ignore[operator]
                cells.append(f'{start}{number}"{style}><v>{value:.16G}</v></c>')
                continue
            elif kind is float and math.isfinite(value):  # type: ignore[arg-type]
                cells.append(f'{start}{number}"{style}><v>{value:.16G}</v></c>')  # as XlsxWriter
                continue
            elif value is None:
                continue
            if value is True or value is False:
                cells.append(f'{start}{number}"{style} t="b"><v>{int(value)}</v></c>')
            elif is_number(value):
                cells.append(f'{start}{number}"{style}><v>{value:.16G}</v></c>')
            else:
                text = cell_text(value)
                if style and "\n" in text:
                    lines = max(lines, min(MAX_LINES, text.count("\n") + 1))
                space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
                cells.append(f'{start}{number}"{style} t="inlineStr"><is><t{space}>{_text(text)}</t></is></c>')
        height = f' ht="{LINE_HEIGHT * lines}" customHeight="1"' if lines > 1 else ""
        self._chunk.append(f'<row r="{number}"{height}>{"".join(cells)}</row>\n')
        self.rows += 1
        if len(self._chunk) >= 512:
            self.flush()

    def flush(self) -> None:
        self.file.write("".join(self._chunk).encode("utf-8"))
        self._chunk.clear()

    def close(self) -> None:
        self.file.close()


def _text(text: str) -> str:
    """XML character data, with what Excel would otherwise undo or lose kept as written, and each
    row on one line of the rows file (its line ends as character references)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "&#13;").replace("\n", "&#10;")
    if "_x" in text:
        text = _ESCAPE_LIKE.sub(r"_x005F_\1", text)
    return text


def splice(written: IO[bytes], target: IO[bytes], parts: dict[str, RowsFile], large: bool) -> None:
    """Copy the workbook XlsxWriter ``written`` into ``target``, each sheet of ``parts`` (by its
    part name) with its rows after its header row, and its dimension extended over them."""
    written.seek(0)
    with (
        zipfile.ZipFile(written) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out,
    ):
        for info in source.infolist():
            rows = parts.get(info.filename)
            data = source.read(info)
            if rows is None:
                out.writestr(info.filename, data)
                continue
            if b"</sheetData>" not in data:  # no row at all: XlsxWriter wrote <sheetData/>
                data = data.replace(b"<sheetData/>", b"<sheetData></sheetData>", 1)
            end = data.rindex(b"</sheetData>")
            head = _DIMENSION.sub(functools.partial(_dimension, rows=rows.rows), data[:end], count=1)
            rows.flush()
            big = large or rows.file.tell() + len(data) > ZIP64_BYTES  # the entry may pass 4 GiB
            with out.open(info.filename, "w", force_zip64=big) as stream:
                stream.write(head)
                _copy_rows(rows, stream, _wrap_style(head, rows) if rows.wrapped else None)
                stream.write(data[end:])


ZIP64_BYTES = 1 << 31
"""A sheet part this large (uncompressed) is written with zip64 sizes, which 4 GiB and more need."""
_DIMENSION = re.compile(rb'<dimension ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"/>')


def _dimension(match: re.Match[bytes], rows: int) -> bytes:
    """The used range: from XlsxWriter's (the header) down over the rows spliced in."""
    first_column, first_row, last_column, last_row = match.groups()
    last = int(last_row or first_row) + rows
    return b'<dimension ref="%s%s:%s%d"/>' % (first_column, first_row, last_column or first_column, last)


def _wrap_style(head: bytes, rows: RowsFile) -> bytes:
    """The style XlsxWriter gave the wrapped columns (one format for all of them)."""
    styles = {
        column: style for first, last, style in _COL_STYLE.findall(head) for column in range(int(first) - 1, int(last))
    }
    found = {styles[column] for column in rows.wrapped if column in styles}
    if len(found) != 1:
        raise ValueError(f"wrapped columns {sorted(rows.wrapped)} have styles {sorted(found)} in the sheet")
    return b' s="%s"' % found.pop()


def _copy_rows(rows: RowsFile, stream: IO[bytes], wrap_style: bytes | None) -> None:
    rows.flush()
    rows.file.seek(0)
    if not rows.wrapped or wrap_style is None:
        shutil.copyfileobj(rows.file, stream, 1 << 20)
        return
    for line in rows.file:  # one row per line: the placeholder never straddles two reads
        stream.write(line.replace(WRAP_STYLE, wrap_style))
