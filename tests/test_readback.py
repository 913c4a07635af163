"""Reports read back (``load_report``) and compared (``python -m pytest_dicomqc diff``).

The workbooks are written here with xlsxwriter in the report's layout, so these tests pin what
the reader accepts, not what today's writer happens to produce; the last test runs the plugin.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xlsxwriter

import pytest_dicomqc
from pytest_dicomqc.readback import ReportError, load_report, tables_from_frames
from pytest_dicomqc.record import Scalar
from tests.helpers import SUBPROCESS_TIMEOUT, write_dicom

Rows = Sequence[Sequence[Scalar]]
FILES_HEADER = ["path", "status", "failed_rules", "dtype", "rows", "original-image"]
RULES_HEADER = ["id", "severity", "target", "operator", "expected", "allow_missing", "when", "description", "line"]
RULE = ["original-image", "error", "ImageType", "contains", "'ORIGINAL'", False, None, None, 3]


def spreadsheet(path: Path, sheets: dict[str, Rows], headline: str | None = None) -> Path:
    """Each sheet's rows from row 1 (the first is the header); with ``headline``, the Summary's
    rows start on row 3 below it, as reports write it."""
    book = xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False})
    for title, rows in sheets.items():
        sheet = book.add_worksheet(title)
        first = 0
        if title == "Summary" and headline is not None:
            sheet.write_string(0, 0, headline)
            first = 2
        for number, row in enumerate(rows):
            sheet.write_row(first + number, 0, row)
    book.close()
    return path


def listed(frame: pd.DataFrame) -> dict[str, list[object]]:
    """Column -> values, empty cells as ``pd.NA`` (``DataFrame.to_dict`` turns them into None)."""
    return {name: frame[name].tolist() for name in frame.columns}


def report(path: Path, files: Rows, rules: Rows = (RULE,)) -> Path:
    return spreadsheet(path, {"Files": [FILES_HEADER, *files], "Rules": [RULES_HEADER, *rules]})


def test_dtypes_from_cells(tmp_path: Path) -> None:
    header = ["path", "rows", "mean", "allow", "original-image", "mixed", "words", "blank"]
    rows = [
        ["a.dcm", 8, 1, True, "PASS", 3, "NA", None],
        ["b.dcm", None, 2.5, False, "N/A", "three", "null", None],
        ["c.dcm", 16, None, None, None, None, "nan", None],
    ]
    frame = load_report(spreadsheet(tmp_path / "r.xlsx", {"Files": [header, *rows]}))["Files"]
    assert list(frame.columns) == header
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "path": "string",
        "rows": "Int64",
        "mean": "Float64",
        "allow": "boolean",
        "original-image": "string",
        "mixed": "string",
        "words": "string",
        "blank": "string",
    }
    assert frame["original-image"].dtype == pd.StringDtype()  # NA-valued, not pandas 3's NaN-valued "str"
    assert frame["rows"].tolist() == [8, pd.NA, 16]
    assert frame["mean"].tolist() == [1.0, 2.5, pd.NA]
    assert frame["allow"].tolist() == [True, False, pd.NA]
    assert frame["original-image"].tolist() == ["PASS", "N/A", pd.NA]
    assert frame["mixed"].tolist() == ["3", "three", pd.NA]
    assert frame["words"].tolist() == ["NA", "null", "nan"]
    assert frame["blank"].tolist() == [pd.NA] * 3


def test_integers_past_int64_are_numbers(tmp_path: Path) -> None:
    """xlsxwriter and openpyxl write such an integer as a double; a writer may write it whole."""
    written = spreadsheet(tmp_path / "w.xlsx", {"Files": [["path", "size"], ["a", 12345], ["b", 1]]})
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(tmp_path / "r.xlsx", "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item).replace(b"<v>12345</v>", f"<v>{2**63}</v>".encode()))
    size = load_report(tmp_path / "r.xlsx")["Files"]["size"]
    assert (str(size.dtype), size.tolist()) == ("Float64", [2.0**63, 1.0])


def test_key_columns_are_text(tmp_path: Path) -> None:
    frames = load_report(report(tmp_path / "r.xlsx", [[7, "passed", None, "int16", 8, "PASS"]], [[5, "error"]]))
    assert (str(frames["Files"]["path"].dtype), frames["Files"]["path"].tolist()) == ("string", ["7"])
    assert (str(frames["Rules"]["id"].dtype), frames["Rules"]["id"].tolist()) == ("string", ["5"])


def test_summary_headline_and_sheet_order(tmp_path: Path) -> None:
    sheets: dict[str, Rows] = {
        "Summary": [["section", "item", "value", "detail"], ["files", "total", 2, None], ["status", "failed", 1, None]],
        "Files": [FILES_HEADER],
        "Rules": [RULES_HEADER],
        "Changes": [["change", "path", "field", "old", "new"]],
    }
    path = spreadsheet(tmp_path / "r.xlsx", sheets, headline="FAILED: 1 file failed")
    frames = load_report(path)
    assert list(frames) == ["Summary", "Files", "Rules", "Changes"]
    summary = frames["Summary"]
    assert summary.attrs == {"verdict": "FAILED: 1 file failed"}
    assert listed(summary) == {
        "section": ["files", "status"],
        "item": ["total", "failed"],
        "value": [2, 1],
        "detail": [pd.NA, pd.NA],
    }
    assert frames["Files"].shape == (0, len(FILES_HEADER))
    old_layout = load_report(spreadsheet(tmp_path / "old.xlsx", {"Summary": sheets["Summary"]}))["Summary"]
    assert old_layout.attrs == {}
    assert old_layout.equals(summary)


def test_continued_sheets_are_joined(tmp_path: Path) -> None:
    sheets: dict[str, Rows] = {
        "Files": [["path", "mean"], ["a", 1], ["b", 2]],
        "Files (2)": [["path", "mean"], ["c", 2.5]],
        "Rules": [["id"], ["r"]],
        "Files (3)": [["path", "mean"], ["d", None]],
        "Notes (2)": [["x"], [1]],
    }
    frames = load_report(spreadsheet(tmp_path / "r.xlsx", sheets))
    assert list(frames) == ["Files", "Rules", "Notes (2)"]
    assert listed(frames["Files"]) == {"path": ["a", "b", "c", "d"], "mean": [1.0, 2.0, 2.5, pd.NA]}
    assert str(frames["Files"]["mean"].dtype) == "Float64"  # typed over every part
    sheets["Files (2)"] = [["path", "average"], ["c", 2.5]]
    with pytest.raises(ReportError, match=r"r\.xlsx: sheet 'Files \(2\)': its header differs from sheet 'Files'"):
        load_report(spreadsheet(tmp_path / "r.xlsx", sheets))


def test_tables_are_exact_builtins(tmp_path: Path) -> None:
    files = [["a.dcm", "failed", "original-image", "int16", 8, "FAIL"], ["b.dcm", "passed", None, None, None, "N/A"]]
    tables = tables_from_frames(load_report(report(tmp_path / "r.xlsx", files)))
    assert tables.files == {
        "a.dcm": dict(zip(FILES_HEADER, files[0], strict=True)),
        "b.dcm": dict(zip(FILES_HEADER, files[1], strict=True)),
    }
    assert tables.rules == {"original-image": dict(zip(RULES_HEADER, RULE, strict=True))}
    values = [value for table in (tables.files, tables.rules) for row in table.values() for value in row.values()]
    assert {type(value) for value in values} == {str, int, bool, type(None)}


def test_tables_from_other_frames_are_exact_builtins() -> None:
    """Frames not read by load_report (numpy columns, numpy scalars in object columns) convert as well."""
    files = pd.DataFrame(
        {
            "path": ["a"],
            "status": ["passed"],
            "rows": np.array([8], np.int32),
            "mean": pd.Series([np.float32(0.5)], dtype=object),
            "flag": pd.Series([np.bool_(True)], dtype=object),
            "frames": pd.Series([np.int64(2)], dtype=object),
        }
    )
    tables = tables_from_frames({"Files": files, "Rules": pd.DataFrame({"id": ["r"], "line": [pd.NA]})})
    row = tables.files["a"]
    assert row == {"path": "a", "status": "passed", "rows": 8, "mean": 0.5, "flag": True, "frames": 2}
    assert [type(value) for value in row.values()] == [str, str, int, float, bool, int]
    assert tables.rules == {"r": {"id": "r", "line": None}}


@pytest.mark.parametrize(
    ("sheets", "problem"),
    [
        ({"Rules": [RULES_HEADER]}, "not a dicomqc report: no 'Files' sheet"),
        ({"Files": [["name"]], "Rules": [RULES_HEADER]}, "not a dicomqc report: sheet 'Files' has no 'path' column"),
        ({"Files": [["path"], ["a"], ["a"]], "Rules": [["id"]]}, "sheet 'Files': path 'a' is on more than one row"),
        (
            {"Files": [["path", "status"], [None, "passed"]], "Rules": [["id"]]},
            "sheet 'Files': a row without a path (found None)",
        ),
    ],
)
def test_tables_need_a_report(tmp_path: Path, sheets: dict[str, Rows], problem: str) -> None:
    frames = load_report(spreadsheet(tmp_path / "r.xlsx", sheets))
    with pytest.raises(ReportError) as raised:
        tables_from_frames(frames)
    assert str(raised.value) == problem


def test_unreadable_files_name_the_path(tmp_path: Path) -> None:
    text = tmp_path / "text.xlsx"
    text.write_text("path,status\n")
    archive = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("readme.txt", "not a workbook")
    no_header = spreadsheet(tmp_path / "gap.xlsx", {"Files": [["path", None, "status"]]})
    expected = {
        tmp_path / "missing.xlsx": "cannot read: No such file or directory",
        tmp_path: "cannot read: Is a directory",
        text: "not an Excel workbook (.xlsx): File is not a zip file",
        archive: "not an Excel workbook (.xlsx): There is no item named '[Content_Types].xml' in the archive",
        no_header: "sheet 'Files': column 2 has no header",
    }
    for path, problem in expected.items():
        with pytest.raises(ReportError) as raised:
            load_report(path)
        assert str(raised.value) == f"{path}: {problem}"


def test_import_stays_light_and_load_report_delegates(tmp_path: Path) -> None:
    code = "import sys, pytest_dicomqc, pytest_dicomqc.plugin; print('pandas' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert completed.stdout == "False\n"
    assert "load_report" in pytest_dicomqc.__all__
    path = report(tmp_path / "r.xlsx", [["a.dcm", "passed", None, "int16", 8, "PASS"]])
    assert pytest_dicomqc.load_report(path)["Files"].equals(load_report(path)["Files"])


def diff(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_dicomqc", "diff", *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=SUBPROCESS_TIMEOUT)


def test_diff_command(tmp_path: Path) -> None:
    old = report(
        tmp_path / "old.xlsx",
        [["a.dcm", "passed", None, "int16", 8, "PASS"], ["b.dcm", "failed", "original-image", "int16", 8, "FAIL"]],
    )
    new = report(
        tmp_path / "new.xlsx",
        [["a.dcm", "failed", "original-image", "uint16", 8, "FAIL"], ["c.dcm", "passed", None, "int16", 8, "PASS"]],
    )
    completed = diff(old, new)
    assert (completed.returncode, completed.stderr) == (1, "")
    assert completed.stdout.splitlines() == [
        "dicomqc diff: 1 new failure, 1 added, 1 removed, 1 value changed",
        "new failure a.dcm: passed -> failed (original-image)",
        "added c.dcm: passed",
        "removed b.dcm: failed",
        "value changed a.dcm dtype: int16 -> uint16",
    ]
    completed = diff(new, old, "--limit", "1")
    assert (completed.returncode, completed.stderr) == (0, "")
    assert completed.stdout.splitlines() == [
        "dicomqc diff: 1 fixed, 1 added, 1 removed, 1 value changed",
        "fixed a.dcm: failed -> passed (original-image)",
        "… and 3 more (--limit 0 lists all)",
    ]
    assert diff(new, old, "--limit", "0").stdout.splitlines()[-1] == "value changed a.dcm dtype: uint16 -> int16"
    not_report = spreadsheet(tmp_path / "other.xlsx", {"Sheet1": [["a"]]})
    for arguments, error in [
        ((old, tmp_path / "missing.xlsx"), f"{tmp_path / 'missing.xlsx'}: cannot read: No such file or directory"),
        ((not_report, new), f"{not_report}: not a dicomqc report: no 'Files' sheet"),
    ]:
        completed = diff(*arguments)
        assert (completed.returncode, completed.stdout, completed.stderr) == (4, "", f"ERROR: {error}\n")


def test_diff_of_two_plugin_runs(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    for number, name in enumerate(("a.dcm", "b.dcm", "c.dcm")):  # distinct pixels: no duplicate images
        write_dicom(data / name, pixels=np.full((4, 4), number, np.uint16))
    options = ("--dicom-dir=data", "-p", "no:cacheprovider")
    pytester.runpytest(*options, "--dicom-report=old.xlsx").assert_outcomes(passed=6, skipped=1)  # 1 empty check
    write_dicom(data / "b.dcm", image_type="DERIVED", pixels=np.full((4, 4), 1, np.uint16))
    (data / "c.dcm").unlink()
    write_dicom(data / "d.dcm", pixels=np.full((4, 4), 3, np.uint16))
    pytester.runpytest(*options, "--dicom-report=new.xlsx").assert_outcomes(passed=5, failed=1, skipped=1)
    completed = diff(pytester.path / "old.xlsx", pytester.path / "new.xlsx")
    assert (completed.returncode, completed.stderr) == (1, "")
    assert completed.stdout.splitlines() == [
        "dicomqc diff: 1 new failure, 1 added, 1 removed, 1 value changed",
        "new failure b.dcm: passed -> failed (original-image)",
        "added d.dcm: passed",
        "removed c.dcm: passed",
        "value changed b.dcm ImageType: ORIGINAL\\PRIMARY\\AXIAL -> DERIVED",
    ]
