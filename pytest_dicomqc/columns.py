"""The Files sheet's columns, declared once: name, width, type and how each cell is taken from a row.

The fixed columns come first (their names are reserved: no rule id may take one), then the
metadata columns (:func:`pytest_dicomqc.pipeline.value_columns`), then one column per rule.
Every column holds one type, so that a filter, a sort or pandas sees numbers as numbers: a
numeric tag that may hold several values (WindowCenter ``40\\400``) shows its first value as a
number and, in a ``<name>_all`` text column beside it, every value as DICOM writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pytest_dicomqc.record import PIXEL_FIELDS, STATUS_NOT_RUN, ReportRow, Scalar
from pytest_dicomqc.rules.regex import Regex

ColumnType = Literal["text", "integer", "number"]
ALL_VALUES = "_all"
"""Suffix of the text column beside a numeric tag that may hold several values."""
THIS_RUN = "this run"
"""``checked`` of a file checked in this run (else: ``earlier run <time>``, or nothing)."""
NO_SERIES = "(no series)"
"""The series of a file without SeriesInstanceUID (not DICOM, unreadable, or the tag missing)."""


@dataclass(frozen=True)
class ValueColumn:
    """A metadata column as the controller plans it; crosses to the writer process."""

    name: str
    type: ColumnType = "text"
    multi_valued: bool = False
    """A numeric tag whose VM allows several values: gets a ``<name>_all`` text column."""


@dataclass(frozen=True)
class Column:
    name: str
    width: int
    type: ColumnType
    cell: Callable[[ReportRow], Scalar]


def _record_text(get: Callable[[ReportRow], str]) -> Callable[[ReportRow], Scalar]:
    return lambda row: get(row) if row.record is not None else ""


def _checked(row: ReportRow) -> str:
    """When the row's result was made: this run, an earlier one (partial runs), or never."""
    if row.earlier:
        return f"earlier run {row.earlier}"
    return "" if row.status == STATUS_NOT_RUN else THIS_RUN


def folder_of(path: str) -> str:
    """A dataset-relative path's folder, ``.`` for the dataset root."""
    return path.rpartition("/")[0] or "."


def series_label(path: str, series_uid: Scalar) -> str:
    """The series a file belongs to, as the Files and Series sheets name it: its folder and its
    SeriesInstanceUID (a series copied into two folders is two rows to triage)."""
    return f"{folder_of(path)} | {series_uid if series_uid not in (None, '') else NO_SERIES}"


def _series(row: ReportRow) -> str:
    return series_label(row.path, row.record.values.get("SeriesInstanceUID") if row.record is not None else None)


FIXED_NAMES = ("path", "kind", "status", "failed_rules", "warnings", "error", "checked", "split", "series")
"""Names no rule id may take (with the metadata columns')."""


def fixed_columns(split: Regex | None) -> tuple[Column, ...]:
    columns = (
        Column("path", 48, "text", lambda row: row.path),
        Column("kind", 11, "text", _record_text(lambda row: row.record.kind)),  # type: ignore[union-attr]
        Column("status", 10, "text", lambda row: row.status),
        Column("failed_rules", 24, "text", _record_text(lambda row: ",".join(row.record.failed_rules))),  # type: ignore[union-attr]
        Column("warnings", 24, "text", _record_text(lambda row: ",".join(row.record.warned_rules))),  # type: ignore[union-attr]
        Column("error", 60, "text", lambda row: (row.record.error if row.record is not None else "") or row.error),
        Column("checked", 26, "text", _checked),
        Column("split", 10, "text", lambda row: (split.prefix(row.path) or "") if split is not None else ""),
        Column("series", 40, "text", _series),
    )
    assert tuple(column.name for column in columns) == FIXED_NAMES
    return columns


WIDTHS = {"notes": 40, "ImageType": 28, "transfer_syntax": 30, "SOPClass": 28}
"""Widths of metadata columns that hold long text; the others fit their header."""
PIXEL_TYPES: dict[str, ColumnType] = {name: "integer" for name in PIXEL_FIELDS}
PIXEL_TYPES.update(dtype="text", mean="number", min="number", max="number", size_bytes="integer")


def width(name: str) -> int:
    return WIDTHS.get(name, max(10, len(name) + 3))


def _number(value: Scalar, integer: bool) -> Scalar:
    """The first value of a numeric cell as a number; ``None`` when it is not one."""
    if value is None or value == "":
        return None
    if type(value) is int or type(value) is float:
        return int(value) if integer and type(value) is float and value.is_integer() else value
    first = str(value).split("\\", 1)[0].strip()
    try:
        number = float(first)
    except ValueError:
        return None
    if integer and number.is_integer():
        return int(number)
    return number


def _all_values(value: Scalar) -> Scalar:
    """Every value of a numeric tag as text, where the number column cannot show them all."""
    if value is None or type(value) in (int, float):
        return None
    return str(value)


def value_columns_of(value: ValueColumn) -> tuple[Column, ...]:
    name = value.name

    def raw(row: ReportRow) -> Scalar:
        return row.record.values.get(name) if row.record is not None else None

    if value.type == "text":
        return (Column(name, width(name), "text", raw),)
    integer = value.type == "integer"
    if not value.multi_valued:
        return (Column(name, width(name), value.type, lambda row: _numeric_or_text(raw(row), integer)),)
    return (
        Column(name, width(name), value.type, lambda row: _number(raw(row), integer)),
        Column(name + ALL_VALUES, max(16, len(name) + 7), "text", lambda row: _all_values(raw(row))),
    )


def _numeric_or_text(value: Scalar, integer: bool) -> Scalar:
    """A single-valued numeric tag: its number; a malformed value (``abc`` in a DS) stays as
    written rather than being lost: it is the one case of text in a number column."""
    number = _number(value, integer)
    return value if number is None else number


def rule_column(rule_id: str) -> Column:
    return Column(
        rule_id, width(rule_id), "text", lambda row: row.record.results.get(rule_id, "") if row.record else ""
    )


def file_columns(values: Sequence[ValueColumn], rule_ids: Sequence[str], split: Regex | None) -> tuple[Column, ...]:
    metadata = (column for value in values for column in value_columns_of(value))
    return (*fixed_columns(split), *metadata, *(rule_column(rule_id) for rule_id in rule_ids))
