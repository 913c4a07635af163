"""The diff of two reports, on hand-built tables: every kind of change, its order, its exit status, its lines."""

from __future__ import annotations

import pytest

from pytest_dicomqc.compare import (
    CHANGE_KINDS,
    CHANGES_HEADER,
    Change,
    Comparison,
    ReportTables,
    compare,
    sheet_rows,
    terminal_lines,
)
from pytest_dicomqc.record import Scalar


def file_row(status: str, failed_rules: str | None = None, **values: Scalar) -> dict[str, Scalar]:
    row: dict[str, Scalar] = {"kind": "dicom", "status": status, "failed_rules": failed_rules}
    row.update({"dtype": "int16", "rows": 8, "columns": 8, "frames": 1, "ImageType": "ORIGINAL\\PRIMARY"})
    row.update(values)
    return row


def rule_row(rule_id: str, line: int, **values: Scalar) -> dict[str, Scalar]:
    row: dict[str, Scalar] = {"id": rule_id, "severity": "error", "target": "ImageType", "operator": "contains"}
    row.update({"expected": "'ORIGINAL'", "allow_missing": False, "when": None, "description": None, "line": line})
    row.update(values)
    return row


OLD = ReportTables(
    files={
        "a.dcm": file_row("passed"),
        "b.dcm": file_row("failed", "original-image"),
        "c.dcm": file_row("passed"),
        "d.dcm": file_row("passed"),
        "e.dcm": file_row("failed", "original-image"),
        "f.dcm": file_row("waived"),
        "g.dcm": file_row("passed"),
    },
    rules={
        "original-image": rule_row("original-image", 3),
        "voi": rule_row("voi", 8, target="VOILUTFunction", operator="in", expected="'LINEAR'"),
        "gone": rule_row("gone", 12),
    },
)
NEW = ReportTables(
    files={
        "a.dcm": file_row("failed", "original-image"),
        "b.dcm": file_row("passed"),
        "c.dcm": file_row("not run"),
        "e.dcm": file_row("failed", "original-image,pixel-dtype"),
        "f.dcm": file_row("crashed"),
        "g.dcm": file_row("passed", dtype="uint16", rows=16),
        "h.dcm": file_row("failed", "voi"),
    },
    rules={
        "voi": rule_row("voi", 4, target="VOILUTFunction", operator="in", expected="'LINEAR'"),  # moved: no change
        "original-image": rule_row("original-image", 9, expected="'DERIVED'", severity="warning"),
        "added-rule": rule_row("added-rule", 14),
    },
)
EXPECTED = (
    Change("new failure", "a.dcm", "status", "passed", "failed", "original-image"),
    Change("new failure", "f.dcm", "status", "waived", "crashed"),
    Change("fixed", "b.dcm", "status", "failed", "passed", "original-image"),
    Change("added", "h.dcm", "status", None, "failed", "voi"),
    Change("removed", "d.dcm", "status", "passed", None),
    Change("status changed", "c.dcm", "status", "passed", "not run"),
    Change("value changed", "g.dcm", "dtype", "int16", "uint16"),
    Change("value changed", "g.dcm", "rows", 8, 16),
    Change("rules changed", "e.dcm", "failed_rules", "original-image", "original-image,pixel-dtype"),
    Change("rule added", "added-rule", "", None, None),
    Change("rule removed", "gone", "", None, None),
    Change("rule changed", "original-image", "severity", "error", "warning"),
    Change("rule changed", "original-image", "expected", "'ORIGINAL'", "'DERIVED'"),
)


def test_every_kind_in_vocabulary_order_then_path() -> None:
    comparison = compare(OLD, NEW)
    assert comparison.changes == EXPECTED
    assert [kind.name for kind in CHANGE_KINDS] == list(dict.fromkeys(change.kind for change in EXPECTED))
    assert comparison.counts == {
        "new failure": 2,
        "fixed": 1,
        "added": 1,
        "removed": 1,
        "status changed": 1,
        "value changed": 2,
        "rules changed": 1,
        "rule added": 1,
        "rule removed": 1,
        "rule changed": 2,
    }
    assert (comparison.regressions, comparison.exit_status) == (2, 1)


def test_the_same_report_has_no_change() -> None:
    comparison = compare(OLD, OLD)
    assert comparison.changes == ()
    assert set(comparison.counts.values()) == {0}
    assert (comparison.regressions, comparison.exit_status) == (0, 0)
    assert terminal_lines(comparison) == ["dicomqc diff: no change"]


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("passed", "failed", "new failure"),
        ("waived", "failed", "new failure"),
        ("skipped", "crashed", "new failure"),
        ("failed", "passed", "fixed"),
        ("crashed", "waived", "fixed"),
        ("failed", "skipped", "status changed"),
        ("failed", "crashed", "status changed"),
        ("passed", "not run", "status changed"),
        ("not run", "failed", "status changed"),
        ("passed", "waived", "status changed"),
    ],
)
def test_status_transitions(old: str, new: str, kind: str) -> None:
    comparison = compare(ReportTables({"x": file_row(old)}, {}), ReportTables({"x": file_row(new)}, {}))
    assert [(c.kind, c.old, c.new) for c in comparison.changes] == [(kind, old, new)]
    assert comparison.exit_status == (kind == "new failure")


def test_a_failing_added_file_is_no_regression() -> None:
    old = ReportTables({"b": file_row("failed", "r")}, {})
    new = ReportTables({"b": file_row("passed"), "c": file_row("failed", "r")}, {})
    assert (compare(old, new).regressions, compare(old, new).exit_status) == (0, 0)  # b fixed, c added
    assert (compare(new, old).regressions, compare(new, old).exit_status) == (1, 1)  # b a new failure, c removed


def test_values_compare_as_written_and_missing_columns_are_skipped() -> None:
    old = ReportTables({"x": file_row("passed", rows=8, Modality="CT", BitsStored=16)}, {})
    text = file_row("passed", rows="8", Modality="CT", BitsStored=12)  # rows read back as text: same value
    del text["dtype"]  # a column only the old report has
    changes = compare(old, ReportTables({"x": text}, {})).changes
    assert changes == (Change("value changed", "x", "BitsStored", 16, 12),)
    empty = compare(old, ReportTables({"x": file_row("passed", rows=None, Modality="CT", BitsStored=16)}, {}))
    assert empty.changes == (Change("value changed", "x", "rows", 8, None),)


def test_rule_line_alone_is_no_change_and_uncompared_columns() -> None:
    old = ReportTables({}, {"r": rule_row("r", 3)})
    assert compare(old, ReportTables({}, {"r": rule_row("r", 30)})).changes == ()
    narrower = rule_row("r", 3, description="text")
    del narrower["when"]
    assert compare(old, ReportTables({}, {"r": narrower})).changes == (
        Change("rule changed", "r", "description", None, "text"),
    )


def test_terminal_lines_exact() -> None:
    assert terminal_lines(compare(OLD, NEW), limit=None) == [
        "dicomqc diff: 2 new failures, 1 fixed, 1 added, 1 removed, 1 status changed, 2 values changed, "
        "1 file failing other rules, 1 rule added, 1 rule removed, 2 rule settings changed",
        "new failure a.dcm: passed -> failed (original-image)",
        "new failure f.dcm: waived -> crashed",
        "fixed b.dcm: failed -> passed (original-image)",
        "added h.dcm: failed (voi)",
        "removed d.dcm: passed",
        "status changed c.dcm: passed -> not run",
        "value changed g.dcm dtype: int16 -> uint16",
        "value changed g.dcm rows: 8 -> 16",
        "rules changed e.dcm failed_rules: original-image -> original-image,pixel-dtype",
        "rule added added-rule",
        "rule removed gone",
        "rule changed original-image severity: error -> warning",
        "rule changed original-image expected: 'ORIGINAL' -> 'DERIVED'",
    ]


def test_terminal_lines_limit_and_singulars() -> None:
    comparison = Comparison(
        (
            Change("new failure", "a", "status", "passed", "failed"),
            Change("value changed", "a", "frames", None, 2),
            Change("value changed", "b", "frames", 1, None),
        )
    )
    assert terminal_lines(comparison, limit=1) == [
        "dicomqc diff: 1 new failure, 2 values changed",
        "new failure a: passed -> failed",
        "… and 2 more (Changes sheet)",
    ]
    assert terminal_lines(comparison, limit=2, rest="--limit 0 lists all")[-1] == "… and 1 more (--limit 0 lists all)"
    assert terminal_lines(comparison, limit=3) == terminal_lines(comparison, limit=None)
    assert terminal_lines(comparison, limit=3)[2:] == [
        "value changed a frames: (empty) -> 2",
        "value changed b frames: 1 -> (empty)",
    ]
    assert terminal_lines(comparison, limit=0) == [
        "dicomqc diff: 1 new failure, 2 values changed",
        "… and 3 more (Changes sheet)",
    ]


def test_sheet_rows() -> None:
    header, rows = CHANGES_HEADER, sheet_rows(compare(OLD, NEW))
    assert header == ("change", "path", "field", "old", "new")
    assert rows[:2] == [
        ["new failure", "a.dcm", "status", "passed", "failed"],
        ["new failure", "f.dcm", "status", "waived", "crashed"],
    ]
    assert rows[-1] == ["rule changed", "original-image", "expected", "'ORIGINAL'", "'DERIVED'"]
    assert len(rows) == len(EXPECTED)
