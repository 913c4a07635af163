"""Unit tests of the workbook as XlsxWriter writes it (writers/workbook.py), read back with openpyxl:
typed cells, hostile text, colours by conditional formatting, flags, the chart, frozen and filtered
headers, wrapped rows."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from pytest_dicomqc.columns import ValueColumn
from pytest_dicomqc.conclusion import Scope, conclude
from pytest_dicomqc.record import FileRecord, ReportRow, Scalar
from pytest_dicomqc.rules.load import parse_rules
from pytest_dicomqc.writers.rows import TRUNCATED
from pytest_dicomqc.writers.sheets import STATUS_STYLES, EndOfRun, FilesPlan
from pytest_dicomqc.writers.workbook import ReportWorkbook
from tests.helpers import write_workbook

VALUES = (
    ValueColumn("ImageType"),
    ValueColumn("rows", "integer"),
    ValueColumn("mean", "number"),
    ValueColumn("WindowCenter", "number", multi_valued=True),
    ValueColumn("RescaleSlope", "number"),
    ValueColumn("notes"),
)
PLAN = FilesPlan(VALUES, ("original-image",), None)
END = EndOfRun("PASSED: 1 file, every check held", "PASSED", [], None, [], [], [], [], [], {})


def record(path: str, values: dict[str, Scalar], result: str = "PASS") -> FileRecord:
    return FileRecord(path, "dicom", "passed", "", values, {"original-image": result}, ())


def files_workbook(rows: Sequence[ReportRow], end: EndOfRun = END) -> openpyxl.Workbook:
    stream = io.BytesIO()
    workbook = ReportWorkbook(stream, PLAN)
    workbook.add_files(rows)
    workbook.finish(end)
    stream.seek(0)
    return openpyxl.load_workbook(stream)


def files_rows(book: openpyxl.Workbook) -> list[dict[str, Any]]:
    header, *rows = book["Files"].iter_rows(values_only=True)
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_one_type_per_column_multi_valued_numbers_split() -> None:
    """WindowCenter ``40\\400`` would make a numeric column text: its first value is the number,
    every value is text in ``WindowCenter_all``. A malformed single value stays as written."""
    values: list[dict[str, Scalar]] = [
        {"rows": 512, "mean": 12.5, "WindowCenter": 40.0, "RescaleSlope": 1.0},
        {"rows": 256, "mean": -3.25, "WindowCenter": "40\\400", "RescaleSlope": "abc"},
        {"WindowCenter": "x\\1"},
    ]
    book = files_workbook([ReportRow(f"{i}.dcm", "passed", record(f"{i}.dcm", v)) for i, v in enumerate(values)])
    cells = [
        (row["rows"], row["mean"], row["WindowCenter"], row["WindowCenter_all"], row["RescaleSlope"])
        for row in files_rows(book)
    ]
    assert cells == [(512, 12.5, 40, None, 1), (256, -3.25, 40, "40\\400", "abc"), (None, None, None, "x\\1", None)]
    assert [type(value) for value in cells[1][:3]] == [int, float, int]


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ('=HYPERLINK("http://x","y")', '=HYPERLINK("http://x","y")'),
        ("+1", "+1"),
        ("1e5", "1e5"),
        ("http://example.com/x", "http://example.com/x"),
        ("a < b & c > d", "a < b & c > d"),
        ("  padded  ", "  padded  "),
        ("\x1b$B;3ED\x1b(B", "$B;3ED(B"),
        ("x\udcffy", "x\\udcffy"),
        ("ÄÖ 漢字 \U0001f600", "ÄÖ 漢字 \U0001f600"),
        ("A" * 40_000, "A" * (32_767 - len(TRUNCATED)) + TRUNCATED),
        # XlsxWriter copies text of this shape into the sheet's XML as it is (a rich string)
        ("<r><t>injected</t></r>", "<r><t>injected</t></r>"),
        ("<r></r>", "<r></r>"),
        ('<r><t>a</t></r><c r="A1"><v>1</v></c><r>', '<r><t>a</t></r><c r="A1"><v>1</v></c><r>'),
    ],
)
def test_text_comes_back_as_written_never_a_formula(written: str, read: str) -> None:
    book = files_workbook([ReportRow("a.dcm", "passed", record("a.dcm", {"ImageType": written, "notes": written}))])
    sheet = book["Files"]
    header = [cell.value for cell in sheet[1]]
    for name in ("ImageType", "notes"):
        cell = sheet.cell(row=2, column=header.index(name) + 1)
        assert (cell.value, cell.data_type) == (read, "s")


def test_excel_escape_sequences_are_escaped() -> None:
    """Excel reads "_x0041_" in text as "A": the underscore is escaped as Excel does it."""
    stream = io.BytesIO()
    workbook = ReportWorkbook(stream, PLAN)
    workbook.add_files([ReportRow("a_x0041_b.dcm", "passed", record("a_x0041_b.dcm", {}))])
    workbook.finish(END)
    xml = zipfile.ZipFile(stream).read("xl/worksheets/sheet2.xml").decode()
    assert "a_x005F_x0041_b.dcm" in xml


def test_header_bold_frozen_filtered() -> None:
    rows = [ReportRow(f"{i}.dcm", "passed", record(f"{i}.dcm", {})) for i in range(3)]
    book = files_workbook(rows)
    files = book["Files"]
    assert all(cell.font.bold for cell in files[1])
    assert not files["A2"].font.bold
    assert files.freeze_panes == "B2"  # the header and the path stay in view
    last = openpyxl.utils.get_column_letter(files.max_column)
    assert files.auto_filter.ref == f"A1:{last}4"
    assert files.column_dimensions["A"].width == pytest.approx(48, abs=1)
    assert (book["Findings"].freeze_panes, book["Findings"].auto_filter.ref) == ("B2", "A1:G1")


def conditional_formats(sheet: Any) -> dict[str, list[tuple[str, str]]]:
    """Per colour fill, the (ranges, formula) of every conditional format on the sheet."""
    found: dict[str, list[tuple[str, str]]] = {}
    for rules in sheet.conditional_formatting:
        for rule in rules.rules:
            fill = rule.dxf.fill.bgColor.rgb if rule.dxf and rule.dxf.fill else ""
            found.setdefault(str(fill)[-6:], []).append((str(rules.sqref), ",".join(rule.formula or [rule.type])))
    return found


def test_status_and_rule_cells_are_coloured_by_conditional_formats() -> None:
    rows = [ReportRow(f"{i}.dcm", "passed", record(f"{i}.dcm", {})) for i in range(4)]
    book = files_workbook(rows)
    formats = conditional_formats(book["Files"])
    header = [cell.value for cell in book["Files"][1]]
    status = openpyxl.utils.get_column_letter(header.index("status") + 1)
    rule = openpyxl.utils.get_column_letter(header.index("original-image") + 1)
    ranges = f"{status}2:{status}5 {rule}2:{rule}5"
    for colour, words in {
        "C6EFCE": ['"PASS"', '"passed"'],
        "FFC7CE": ['"FAIL"', '"failed"', '"crashed"'],
        "FFEB9C": ['"WARN"'],
        "DDEBF7": ['"WAIVED"', '"waived"'],
        "EDEDED": ['"N/A"', '"not run"', '"skipped"'],
    }.items():
        for word in words:
            assert (ranges, word) in formats[colour], (colour, word)
    words = [formula for found in formats.values() for _, formula in found if formula.startswith('"')]
    assert sorted(words) == sorted(f'"{word}"' for word in STATUS_STYLES)  # one format per word


def test_files_named_by_a_dataset_problem_are_flagged() -> None:
    """Rows streamed long before the dataset checks were judged are flagged afterwards: a
    conditional format on their path cells, consecutive rows as one range, by severity."""
    rows = [ReportRow(f"{i}.dcm", "passed", record(f"{i}.dcm", {})) for i in range(7)]
    flagged = {"1.dcm": "failed", "3.dcm": "failed", "4.dcm": "failed", "6.dcm": "warning", "gone.dcm": "failed"}
    book = files_workbook(rows, EndOfRun("FAILED: x", "FAILED", [], None, [], [], [], [], [], flagged))
    formats = conditional_formats(book["Files"])
    assert ("A3 A5:A6", "LEN(TRIM(A3))>0") in formats["FFC7CE"]
    assert ("A8", "LEN(TRIM(A8))>0") in formats["FFEB9C"]


def test_summary_verdict_chart_and_colours(tmp_path: Path) -> None:
    ruleset = parse_rules(
        "version: 1\nrules:\n  - id: original-image\n    tag: ImageType\n    contains: ORIGINAL\n"
        "  - id: rows-ok\n    pixel: rows\n    min: 1\n",
        "rules.yaml",
    )
    rows = [
        ReportRow("a.dcm", "failed", FileRecord("a.dcm", "dicom", "failed", "", {}, {"original-image": "FAIL"}, ())),
        ReportRow("b.dcm", "passed", FileRecord("b.dcm", "dicom", "passed", "", {}, {"original-image": "PASS"}, ())),
    ]
    report = write_workbook(tmp_path / "r.xlsx", conclude(rows, ruleset, Scope("data/")), ruleset, [])
    book = openpyxl.load_workbook(report)
    summary = book["Summary"]
    assert summary["A1"].value == "FAILED: 1 file failed"
    assert (summary["A1"].font.bold, summary["A1"].fill.fgColor.rgb[-6:]) == (True, "FFC7CE")
    assert [cell.value for cell in summary[3]] == ["section", "item", "value", "detail"]
    assert summary.freeze_panes == "A4"
    rule_rows = [row[0].row for row in summary.iter_rows(min_row=4) if row[0].value == "rule"]
    assert [summary.cell(row=r, column=2).value for r in rule_rows] == ["original-image", "rows-ok"]
    assert [summary.cell(row=r, column=3).value for r in rule_rows] == [1, 0]
    package = zipfile.ZipFile(report)
    chart = package.read("xl/charts/chart1.xml").decode()
    first, last = rule_rows[0], rule_rows[-1]
    assert f"<c:f>Summary!$B${first}:$B${last}</c:f>" in chart
    assert f"<c:f>Summary!$C${first}:$C${last}</c:f>" in chart
    assert "Files failing each rule" in chart
    assert '"failed"' in {formula for _, formula in conditional_formats(summary)["FFC7CE"]}


def test_multi_line_cells_are_wrapped_and_their_rows_tall_enough(tmp_path: Path) -> None:
    broken = FileRecord("a.dcm", "unreadable", "failed", "line one\nline two\nline three", {}, {}, ())
    ruleset = parse_rules("version: 1\nrules: []\n", "rules.yaml")
    rows = [ReportRow("a.dcm", "failed", broken), ReportRow("b.dcm", "not run")]
    report = write_workbook(tmp_path / "r.xlsx", conclude(rows, ruleset, Scope("data/")), ruleset, [])
    files = openpyxl.load_workbook(report)["Files"]
    header = [cell.value for cell in files[1]]
    error = files.cell(row=2, column=header.index("error") + 1)
    assert error.value == "line one\nline two\nline three"
    assert error.alignment.wrap_text
    assert files.row_dimensions[2].height == 45
    assert files.row_dimensions[3].height is None


def test_integers_no_cell_can_hold_are_text() -> None:
    """A 400-digit IS value is an int in the record; as a number it would end the run (found in
    review: OverflowError, no report). It is written as its digits."""
    huge = int("9" * 400)
    book = files_workbook([ReportRow("a.dcm", "passed", record("a.dcm", {"rows": huge, "mean": 2**60}))])
    (row,) = files_rows(book)
    assert (row["rows"], row["mean"]) == ("9" * 400, 2**60)
