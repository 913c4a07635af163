"""The Files sheet's columns, declared once: name, width and how each cell is taken from a row.

The fixed columns come first (their names are reserved: no rule id may take one), then the
metadata columns (:func:`pytest_dicomqc.pipeline.value_columns`), then one column per rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pytest_dicomqc.record import STATUS_NOT_RUN, ReportRow, Scalar

Named = Mapping[str, Sequence[str]]
"""Per file, the ids of the dataset checks that named it."""


@dataclass(frozen=True)
class Column:
    name: str
    width: int
    cell: Callable[[ReportRow, Named], Scalar]


def _record_text(get: Callable[[ReportRow], str]) -> Callable[[ReportRow, Named], Scalar]:
    return lambda row, _named: get(row) if row.record is not None else ""


def _checked(row: ReportRow, _named: Named) -> str:
    """When the row's result was made: this run, an earlier one (partial runs), or never."""
    if row.earlier:
        return f"earlier run {row.earlier}"
    return "" if row.status == STATUS_NOT_RUN else "this run"


FIXED = (
    Column("path", 48, lambda row, _named: row.path),
    Column("kind", 11, _record_text(lambda row: row.record.kind)),  # type: ignore[union-attr]
    Column("status", 10, lambda row, _named: row.status),
    Column("failed_rules", 24, _record_text(lambda row: ",".join(row.record.failed_rules))),  # type: ignore[union-attr]
    Column("warnings", 24, _record_text(lambda row: ",".join(row.record.warned_rules))),  # type: ignore[union-attr]
    Column("error", 60, lambda row, _named: (row.record.error if row.record is not None else "") or row.error),
    Column("dataset_checks", 24, lambda row, named: ",".join(named.get(row.path, ()))),
    Column("checked", 26, _checked),
)
FIXED_NAMES = tuple(column.name for column in FIXED)

WIDTHS = {"notes": 40, "ImageType": 28, "transfer_syntax": 30, "SOPClass": 28}
"""Widths of metadata columns that hold long text; the others fit their header."""


def width(name: str) -> int:
    return WIDTHS.get(name, max(10, len(name) + 3))


def value_column(name: str) -> Column:
    return Column(name, width(name), lambda row, _named: row.record.values.get(name) if row.record else None)


def rule_column(rule_id: str) -> Column:
    return Column(
        rule_id, width(rule_id), lambda row, _named: row.record.results.get(rule_id, "") if row.record else ""
    )


def file_columns(value_names: Sequence[str], rule_ids: Sequence[str]) -> tuple[Column, ...]:
    return (*FIXED, *(value_column(name) for name in value_names), *(rule_column(rule_id) for rule_id in rule_ids))
