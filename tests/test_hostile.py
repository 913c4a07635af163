"""Hostile files, hostile names and values: no crash, no lost file, no formula, the same under xdist."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl
import pytest

from tests import hostile
from tests.helpers import MODES, Runner, formula_cells, read_sheet, write_dicom, write_workbook
from tests.processes import unprivileged


def run_on_hostile_dataset(pytester: pytest.Pytester, mode: str) -> list[dict[str, object]]:
    hostile.build(pytester.path / "data")
    result = Runner(pytester, mode)("--dicom-dir=data", f"--dicom-report={mode}.xlsx", subprocess=True)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, output[-3000:]
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    report = pytester.path / f"{mode}.xlsx"
    assert formula_cells(report) == 0
    return read_sheet(report)


def test_hostile_dataset_plain_and_xdist(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(hostile.CONFTEST)
    plain = run_on_hostile_dataset(pytester, "plain")
    xdist = run_on_hostile_dataset(pytester, "xdist")
    assert sorted(str(row["path"]) for row in plain) == hostile.REGULAR_FILES
    assert xdist == plain
    rows = {str(row["path"]): row for row in plain}
    for path in hostile.REGULAR_FILES:
        expected = hostile.EXPECTED[path]
        assert expected is not None
        kind, status, error = expected
        row = rows[path]
        assert (row["kind"], row["status"]) == (kind, status), (path, row["error"])
        if error:
            assert str(row["error"]).startswith(error), (path, row["error"])
        else:
            assert row["error"] is None, (path, row["error"])
        if status == "failed" and not error:
            assert (row["failed_rules"], row["dtype"]) == hostile.FAILED_RULES[path], path
    escaped = {  # control characters show as escapes: the text the rules saw, visible
        "tab": r"\x09starts with tab",
        "carriage": r"\x0dstarts with CR",
        "controls": r"a\x07b\x1bc",
    }
    for name, text in hostile.HOSTILE_VALUES.items():
        assert rows[f"values/{name}.dcm"]["Manufacturer"] == escaped.get(name, text), name
    assert rows["values/iso2022.dcm"]["Manufacturer"] == "ヤマダ"
    assert rows["names/latin1-\\xe9.dcm"]["status"] == "passed"


def test_long_values_are_cut_visibly(pytester: pytest.Pytester) -> None:
    (pytester.path / "rules.yaml").write_text("version: 1\ncolumns: [ImageComments]\nrules: []\n")
    hostile.build(pytester.path / "data")
    shutil.rmtree(pytester.path / "data" / "names")  # keep to what this test reads
    pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider")
    rows = {row["path"]: row for row in read_sheet(pytester.path / "metadata_dicom.xlsx")}
    comment = str(rows["values/long-text.dcm"]["ImageComments"])
    assert comment.endswith("…") and set(comment[:-1]) == {"L"}  # cut at 1,024 characters when read


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_reads_the_workbook_as_text(pytester: pytest.Pytester, tmp_path: Path) -> None:
    hostile.build(pytester.path / "data")
    pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider")
    report = pytester.path / "metadata_dicom.xlsx"
    profile = tmp_path / "profile"  # a fresh LibreOffice profile: no shared state, no first-run dialog
    command = [
        "soffice",
        f"-env:UserInstallation=file://{profile}",
        "--headless",
        "--convert-to",
        "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",  # -1: each sheet
        "--outdir",
        str(tmp_path),
        str(report),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    with open(tmp_path / "metadata_dicom-Files.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(hostile.REGULAR_FILES)
    manufacturers = {row["path"]: row["Manufacturer"] for row in table}
    assert manufacturers["values/formula.dcm"] == hostile.HOSTILE_VALUES["formula"]  # text, not a link
    assert manufacturers["values/plus.dcm"] == "+1+2"  # not 3
    assert manufacturers["values/at.dcm"] == "@SUM(A1:A9)"


@pytest.mark.parametrize("mode", [*MODES, "readers"])
def test_file_without_read_permission(mode: str) -> None:
    """Also as root: CI runs as root, and root reads any file unless it gives up the right to."""
    work = Path(tempfile.mkdtemp(prefix="dicomqc-permission-"))
    try:
        work.chmod(0o777)  # the user nobody, where that is the way, writes the report here
        way = unprivileged(work)
        if way is None:
            reason = "root, and no way to run pytest without root's right to read any file"
            if os.environ.get("CI"):
                pytest.fail(reason)  # CI runs as root: a skip there would hide the promise for good
            pytest.skip(reason)
        prefix, options = way
        (work / "pytest.ini").write_text("[pytest]\n")  # rootdir and conftest search stop here, not in /tmp
        write_dicom(work / "data" / "names" / "with space.dcm")
        write_dicom(work / "data" / "ok.dcm")
        locked = work / "data" / "locked.dcm"
        write_dicom(locked)
        locked.chmod(0)
        for folder in (work / "data", work / "data" / "names"):
            folder.chmod(0o755)
        arguments = MODES.get(mode, ("--dicom-workers=1",))
        command = [sys.executable, "-m", "pytest", *arguments, "-p", "no:cacheprovider", "--dicom-dir=data"]
        environment = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
        done = subprocess.run(
            [*prefix, *command], cwd=work, env=environment, capture_output=True, text=True, timeout=300, **options
        )
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
        rows = {row["path"]: row for row in read_sheet(work / "metadata_dicom.xlsx")}
        assert [(path, row["kind"], row["status"], row["error"]) for path, row in rows.items()] == [
            ("locked.dcm", "unreadable", "failed", "cannot open file: Permission denied"),
            ("names/with space.dcm", "dicom", "passed", None),
            ("ok.dcm", "dicom", "passed", None),
        ]
    finally:
        shutil.rmtree(work)


def test_report_that_cannot_be_written_at_the_end(pytester: pytest.Pytester) -> None:
    hostile.build(pytester.path / "data")
    pytester.makeconftest(
        """
        import errno
        import xlsxwriter

        def pytest_sessionstart(session):
            def full_disk(self):
                raise OSError(errno.ENOSPC, "No space left on device")
            xlsxwriter.Workbook.close = full_disk
        """
    )
    result = pytester.runpytest_subprocess("--dicom-dir=data", "-p", "no:cacheprovider", timeout=300)
    assert result.ret == 4
    result.stdout.fnmatch_lines(["ERROR: cannot write report */metadata_dicom.xlsx: No space left on device"])
    assert not (pytester.path / "metadata_dicom.xlsx").exists()
    assert [p.name for p in pytester.path.iterdir() if p.name.endswith(".dicomqc-partial")] == []


def test_sheets_continue_past_the_row_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_dicomqc.conclusion import Scope, conclude
    from pytest_dicomqc.record import ReportRow
    from pytest_dicomqc.rules.model import RuleSet
    from pytest_dicomqc.writers import workbook as writer

    monkeypatch.setattr(writer, "EXCEL_MAX_ROWS", 4)  # header + 3 rows per sheet
    rows = [ReportRow(f"{i}.dcm", "not run", error="interrupted") for i in range(8)]
    ruleset = RuleSet("x", ())
    write_workbook(tmp_path / "r.xlsx", conclude(rows, ruleset, Scope("data/")), ruleset, [], [])
    workbook = openpyxl.load_workbook(tmp_path / "r.xlsx")
    # a sheet's continuations come after the sheets there are from the start
    files = ["Files", "Files (2)", "Files (3)"]
    findings = ["Findings", "Findings (2)", "Findings (3)"]
    assert workbook.sheetnames[:7] == ["Summary", "Files", "Series", "Findings", "Dataset", "Rules", "Waivers"]
    assert {"Files (2)", "Files (3)", "Findings (2)", "Findings (3)"} <= set(workbook.sheetnames[7:])
    for parts in (files, findings):
        paths = [row[0] for title in parts for row in workbook[title].iter_rows(min_row=2, values_only=True)]
        assert paths == [f"{i}.dcm" for i in range(8)]
        assert [workbook[t]["A1"].value for t in parts] == ["path"] * 3
        last_rows = [workbook[t].auto_filter.ref.split(":")[1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for t in parts]
        assert last_rows == ["4", "4", "3"]  # each part filters its own rows
