"""Unit tests of writers/xlsx.py, the streaming SpreadsheetML writer, read back with openpyxl."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from pytest_dicomqc.writers import xlsx


def write(path: Path, rows: list[list[object]], header: tuple[str, ...] = ("a", "b", "c")) -> Path:
    workbook = xlsx.Workbook(str(path))
    workbook.write_sheet("First", header, [12.5] * len(header), rows)
    workbook.write_sheet("Second's", ("x",), [10], [["only"]])
    workbook.close()
    return path


def test_values_keep_their_type(tmp_path: Path) -> None:
    rows: list[list[object]] = [[1, 2.5, "text"], [True, False, None], [-(2**40), 1e-07, ""], [3]]
    sheet = openpyxl.load_workbook(write(tmp_path / "r.xlsx", rows))["First"]
    read = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2, max_col=3)]
    assert read == [[1, 2.5, "text"], [True, False, None], [-(2**40), 1e-07, None], [3, None, None]]
    assert [type(v) for v in read[0]] == [int, float, str]


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ('=HYPERLINK("http://x","y")', '=HYPERLINK("http://x","y")'),
        ("a < b & c > d", "a < b & c > d"),
        ("line\r\nbreak\ttab", "line\r\nbreak\ttab"),
        ("  padded  ", "  padded  "),
        ("\x1b$B;3ED\x1b(B", "$B;3ED(B"),
        ("x\udcffy", "x\\udcffy"),
        ("ÄÖ 漢字 \U0001f600", "ÄÖ 漢字 \U0001f600"),
        ("A" * 40_000, "A" * (32_767 - len(xlsx.TRUNCATED)) + xlsx.TRUNCATED),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
    ],
)
def test_text_comes_back_as_written(tmp_path: Path, written: object, read: str) -> None:
    sheet = openpyxl.load_workbook(write(tmp_path / "r.xlsx", [[written]]))["First"]
    cell = sheet.cell(row=2, column=1)
    assert cell.value == read
    assert cell.data_type == "s"  # text, never a formula


def test_excel_escape_sequences_are_escaped(tmp_path: Path) -> None:
    """Excel reads "_x0041_" in text as "A": the writer escapes the underscore as Excel does."""
    path = write(tmp_path / "r.xlsx", [["a_x0041_b", "_x_"]])
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "a_x005F_x0041_b" in xml
    assert ">_x_<" in xml


def test_layout_bold_frozen_filtered_widths(tmp_path: Path) -> None:
    workbook = openpyxl.load_workbook(write(tmp_path / "r.xlsx", [[1, 2, 3], [4, 5, 6]]))
    assert workbook.sheetnames == ["First", "Second's"]
    sheet = workbook["First"]
    assert [cell.value for cell in sheet[1]] == ["a", "b", "c"]
    assert all(cell.font.bold for cell in sheet[1])
    assert not sheet.cell(row=2, column=1).font.bold
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:C3"
    assert sheet.column_dimensions["B"].width == 12.5
    assert [[c.value for c in row] for row in workbook["Second's"].iter_rows()] == [["x"], ["only"]]


def test_many_columns_get_excel_letters(tmp_path: Path) -> None:
    header = tuple(f"h{i}" for i in range(30))
    sheet = openpyxl.load_workbook(write(tmp_path / "r.xlsx", [list(range(30))], header))["First"]
    assert [cell.value for cell in sheet[2]] == list(range(30))
    assert sheet.auto_filter.ref == "A1:AD2"
    assert [xlsx.column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


def test_sheets_past_the_zip32_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Files sheet of a million rows passes 2 GiB; with the limit made tiny, the same path is taken."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1_000)
    rows: list[list[object]] = [[index, f"file {index}", 0.5] for index in range(200)]
    sheet = openpyxl.load_workbook(write(tmp_path / "r.xlsx", rows))["First"]
    assert [cell.value for cell in sheet[201]] == [199, "file 199", 0.5]
