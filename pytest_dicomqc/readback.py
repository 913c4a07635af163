"""A report workbook read back: one pandas frame per sheet, typed by what its cells hold.

pandas is imported here only, and this module only when a report is read: ``import
pytest_dicomqc`` (every pytest run) never pays for it. The sheet titles and the Summary's layout
are the file format's, not the current writer's: older reports keep theirs.

Read with openpyxl's read-only mode and typed column by column here, not with
``pandas.read_excel``, which reads through the same openpyxl rows, turns the rule cells' ``N/A``
into NaN unless told not to, and then needs the same typing pass. 20,000 rows x 50 columns written
by xlsxwriter (``constant_memory``, inline strings), best of 3 on 2 cores: openpyxl + typing here
13.3 s; ``read_excel(dtype=object, na_filter=False)`` + the same typing 16.5 s; plain
``read_excel`` (pandas' own NA and dtypes, wrong here) 15.5 s. Nearly all of it is openpyxl
parsing cells (it builds a rich-text object per inline string); the typing costs 0.4 s.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import openpyxl
import pandas as pd

from pytest_dicomqc.compare import ReportTables, Row
from pytest_dicomqc.record import Scalar

FILES = "Files"
KEY_COLUMNS = {FILES: "path", "Rules": "id"}
"""The sheets a comparison reads, by the column that names a row: always text, never empty, unique."""
SUMMARY = "Summary"
SUMMARY_FIRST_HEADER = "section"
"""The Summary table's first header; above it the verdict headline and a blank row (older
reports: the header on row 1, no headline above it)."""
_PART = re.compile(r"(?P<sheet>.+) \([0-9]+\)")
"""``Files (2)``: where a sheet continues past Excel's row limit."""
_INT64 = (-(2**63), 2**63 - 1)
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, TypeError, SyntaxError)
"""What openpyxl and zipfile raise on a damaged or foreign file (XML parse errors are SyntaxErrors)."""


class ReportError(ValueError):
    """The file is not a report that can be read: missing, not a workbook, or not laid out as one."""


def load_report(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Every sheet in tab order, parts (``Files (2)`` …) joined; the Summary's headline, where it
    has one, in ``frames["Summary"].attrs["verdict"]``.

    Per column, from its non-empty cells: all integers -> ``Int64``, numbers -> ``Float64``, all
    booleans -> ``boolean``, anything else -> ``string``; an empty cell is ``<NA>``, text such as
    ``N/A`` stays text. A row-naming column (:data:`KEY_COLUMNS`) is always ``string``.
    """
    try:
        with open(path, "rb") as stream:  # a stream: openpyxl would refuse a report not named .xlsx
            return _read(stream)
    except ReportError as exc:
        raise ReportError(f"{os.fspath(path)}: {exc}") from None
    except OSError as exc:
        raise ReportError(f"{os.fspath(path)}: cannot read: {exc.strerror or exc}") from None
    except _UNREADABLE as exc:
        raise ReportError(f"{os.fspath(path)}: not an Excel workbook (.xlsx): {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _read(stream: Any) -> dict[str, pd.DataFrame]:
    workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True, keep_links=False)
    try:
        parts: dict[str, list[Any]] = {}
        for title in workbook.sheetnames:
            match = _PART.fullmatch(title)
            sheet = match["sheet"] if match and match["sheet"] in parts else title
            parts.setdefault(sheet, []).append(workbook[title])
        return {sheet: _frame(sheet, worksheets) for sheet, worksheets in parts.items()}
    finally:
        workbook.close()


def _frame(sheet: str, worksheets: Sequence[Any]) -> pd.DataFrame:
    """One sheet, its parts one after another (each part repeats the header); blank rows left out."""
    header: list[str] = []
    rows: list[tuple[Any, ...]] = []
    attrs: dict[str, str] = {}
    for number, worksheet in enumerate(worksheets):
        cells = (row for row in worksheet.iter_rows(values_only=True) if row.count(None) != len(row))
        first = next(cells, ())
        if sheet == SUMMARY and number == 0 and first and first[0] != SUMMARY_FIRST_HEADER:
            attrs["verdict"] = str(first[0])
            first = next(cells, ())
        part_header = _header(worksheet.title, first)
        if number and part_header != header:
            raise ReportError(f"sheet {worksheet.title!r}: its header differs from sheet {sheet!r}'s")
        header = part_header
        rows += cells
    width = len(header)
    fitted = (row[:width] if len(row) >= width else row + (None,) * (width - len(row)) for row in rows)
    columns = list(zip(*fitted, strict=True)) or [()] * width
    key = KEY_COLUMNS.get(sheet)
    numbers = _number_columns(header) if sheet == FILES else set()
    frame = pd.DataFrame(
        {name: _typed(values, name == key, name in numbers) for name, values in zip(header, columns, strict=True)}
    )
    frame.attrs.update(attrs)
    return frame


def _header(title: str, row: Sequence[Any]) -> list[str]:
    names = list(row)
    while names and names[-1] is None:
        names.pop()
    if None in names:
        raise ReportError(f"sheet {title!r}: column {names.index(None) + 1} has no header")
    names = [str(name) for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ReportError(f"sheet {title!r}: more than one column named {duplicates[0]!r}")
    return names


def _number_columns(header: Sequence[str]) -> set[str]:
    """Files-sheet columns of real numbers (mean, a DS tag): Float64 even when every value is whole."""
    from pytest_dicomqc.pipeline import column_type  # pydicom's dictionary names the VR

    return {name for name in header if column_type(name) == "number"}


def _typed(values: Sequence[Any], text: bool, number: bool = False) -> Any:
    """The column's pandas array: the narrowest of Int64, Float64, boolean and string its cells
    fit; Float64 for a column of real numbers (``number``) whatever its cells."""
    kinds = {type(value) for value in values} - {type(None)}
    if number and kinds <= {int, float}:
        return pd.array([None if value is None else float(value) for value in values], dtype="Float64")
    if kinds and not text:
        if kinds == {bool}:
            return pd.array(values, dtype="boolean")
        if kinds == {int}:
            present = [value for value in values if value is not None]
            if _INT64[0] <= min(present) and max(present) <= _INT64[1]:
                return pd.array(values, dtype="Int64")
        if kinds <= {int, float}:  # Excel holds numbers as doubles: an integer past int64 was one
            return pd.array(values, dtype="Float64")
    return pd.array([_text(value) for value in values], dtype="string")


_EXCEL_ESCAPE = re.compile("_x([0-9A-Fa-f]{4})_")


def _text(value: Any) -> str | None:
    """A cell's text as Excel shows it: openpyxl leaves Excel's ``_xHHHH_`` escapes in inline
    strings (``_x005F_x0041_`` is the text ``_x0041_``; ``_x000D_`` a carriage return)."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return _EXCEL_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text) if "_x" in text else text


def tables_from_frames(frames: Mapping[str, pd.DataFrame]) -> ReportTables:
    """The Files and Rules sheets as plain rows: ``<NA>`` as ``None``, every value an exact builtin."""
    files, rules = (_keyed(frames, sheet, key) for sheet, key in KEY_COLUMNS.items())
    return ReportTables(files=files, rules=rules)


def _keyed(frames: Mapping[str, pd.DataFrame], sheet: str, key: str) -> dict[str, Row]:
    frame = frames.get(sheet)
    if frame is None:
        raise ReportError(f"not a dicomqc report: no {sheet!r} sheet")
    if key not in frame.columns:
        raise ReportError(f"not a dicomqc report: sheet {sheet!r} has no {key!r} column")
    names = [str(name) for name in frame.columns]
    columns = [[_scalar(value) for value in frame[name].tolist()] for name in frame.columns]
    rows: dict[str, Row] = {}
    for values in zip(*columns, strict=True):
        row = dict(zip(names, values, strict=True))
        name = row[key]
        if not isinstance(name, str) or not name:
            raise ReportError(f"sheet {sheet!r}: a row without a {key} (found {name!r})")
        if name in rows:
            raise ReportError(f"sheet {sheet!r}: {key} {name!r} is on more than one row")
        rows[name] = row
    return rows


def _scalar(value: Any) -> Scalar:
    if value is pd.NA or value is None:
        return None
    if type(value) in (str, int, float, bool):
        return value  # type: ignore[no-any-return]
    return value.item()  # type: ignore[no-any-return]  # a numpy scalar


def load_tables(path: str | os.PathLike[str]) -> ReportTables:
    """The report at ``path`` as a comparison reads it; :class:`ReportError` names the path."""
    frames = load_report(path)
    try:
        return tables_from_frames(frames)
    except ReportError as exc:
        raise ReportError(f"{os.fspath(path)}: {exc}") from None
