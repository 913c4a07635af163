"""Unit tests of the workbook writer (writers/): hostile text stays text, the sheet layout, atomic replacement."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter

from pytest_dicomqc.conclusion import Scope, conclude
from pytest_dicomqc.discover import printable
from pytest_dicomqc.record import FileRecord, Finding, ReportRow, Scalar
from pytest_dicomqc.rules.load import parse_rules
from pytest_dicomqc.rules.model import RuleSet
from tests.helpers import SUMMARY_HEADER_ROW, write_workbook

RULES = parse_rules(
    "version: 1\n"
    "rules:\n"
    "  - id: original-image\n"
    '    description: \'=HYPERLINK("http://x","rules")\'\n'
    "    tag: ImageType\n"
    "    contains: ORIGINAL\n"
    "  - id: big-enough\n"
    "    pixel: rows\n"
    "    min: 256\n"
    "    severity: warning\n"
    "    when: {Modality: [CT, MR]}\n",
    "rules.yaml",
)
VALUE_COLUMNS = ["ImageType", "VOILUTFunction", "rows", "mean", "Manufacturer", "notes"]
FIXED_HEADER = ["path", "kind", "status", "failed_rules", "warnings", "error", "checked", "split", "series"]
HYPERLINK = '=HYPERLINK("http://x","y")'
LONG = "A" * 40_000
TRUNCATED = "…[truncated]"
# What goes into a cell and what must come back out of it.
HOSTILE = {
    "formula": (HYPERLINK, HYPERLINK),
    "plus": ("+1", "+1"),
    "minus": ("-1", "-1"),
    "at": ("@SUM(A1)", "@SUM(A1)"),
    "iso2022": ("\x1b$B;3ED\x1b(B", "$B;3ED(B"),
    "controls": ("a\x00\x07b", "ab"),
    "surrogate": ("x\udcffy", "x\\udcffy"),
}


def make_record(path: str, values: dict[str, Scalar], findings: Sequence[Finding] = (), **fields: Any) -> FileRecord:
    results = {"original-image": "PASS", "big-enough": "PASS"}
    results.update(fields.pop("results", {}))
    defaults: dict[str, Any] = {"kind": "dicom", "verdict": "passed", "error": ""}
    defaults.update(fields)
    return FileRecord(path=path, values=values, results=results, findings=tuple(findings), **defaults)


def write(
    path: Path,
    rows: Sequence[ReportRow],
    ruleset: RuleSet = RULES,
    run_facts: Sequence[tuple[str, Scalar]] = (),
) -> Path:
    write_workbook(path, conclude(rows, ruleset, Scope("data/")), ruleset, VALUE_COLUMNS, run_facts)
    return path


def sheet_rows(report: Path, sheet: str) -> list[tuple[Any, ...]]:
    workbook = openpyxl.load_workbook(report)
    return list(workbook[sheet].iter_rows(values_only=True))


def summary_table(report: Path) -> list[tuple[Any, ...]]:
    """The Summary sheet's table, below its header (the verdict headline and a blank row come first)."""
    return sheet_rows(report, "Summary")[SUMMARY_HEADER_ROW + 1 :]


def records_by_path(report: Path) -> dict[str, dict[str, Any]]:
    header, *rows = sheet_rows(report, "Files")
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def hostile_rows() -> list[ReportRow]:
    rows = []
    for name, (text, _) in HOSTILE.items():
        finding = Finding("original-image", "error", text, "to contain 'ORIGINAL'", f"ImageType = {text}")
        record = make_record(
            f"{name}.dcm",
            {"ImageType": text, "Manufacturer": text, "rows": 512, "mean": 1.25, "notes": text},
            [finding],
            verdict="failed",
            error=text,
            results={"original-image": "FAIL"},
        )
        rows.append(ReportRow(f"{name}.dcm", "failed", record))
    rows.append(ReportRow("long.dcm", "passed", make_record("long.dcm", {"Manufacturer": LONG})))
    return rows


@pytest.fixture
def hostile_report(tmp_path: Path) -> Path:
    facts: list[tuple[str, Scalar]] = [("rules", HYPERLINK), ("seed", "=1+1"), ("files", 8)]
    return write(tmp_path / "report.xlsx", hostile_rows(), run_facts=facts)


# --- hostile text -----------------------------------------------------------------------------


def test_no_formula_cells_anywhere(hostile_report: Path) -> None:
    workbook = openpyxl.load_workbook(hostile_report)
    formulas = [
        f"{sheet.title}!{cell.coordinate}"
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]
    assert formulas == []


def test_hyperlink_text_is_a_string_cell(hostile_report: Path) -> None:
    workbook = openpyxl.load_workbook(hostile_report)
    cell = workbook["Files"]["A2"]
    assert cell.value == "formula.dcm"
    imagetype = workbook["Files"].cell(row=2, column=len(FIXED_HEADER) + 1)
    assert (imagetype.value, imagetype.data_type) == (HYPERLINK, "s")


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_comes_back_as_text(hostile_report: Path, name: str) -> None:
    expected = HOSTILE[name][1]
    row = records_by_path(hostile_report)[f"{name}.dcm"]
    assert (row["ImageType"], row["Manufacturer"], row["notes"], row["error"]) == (expected,) * 4


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_in_findings(hostile_report: Path, name: str) -> None:
    expected = HOSTILE[name][1]
    findings = [row for row in sheet_rows(hostile_report, "Findings")[1:] if row[0] == f"{name}.dcm"]
    assert findings == [
        # the record's error (hostile text too) comes first, as a finding about the file itself
        (f"{name}.dcm", "(file)", "error", "dicom", "readable DICOM with decodable pixels", expected, None),
        (f"{name}.dcm", "original-image", "error", expected, "to contain 'ORIGINAL'", f"ImageType = {expected}", None),
    ]


def test_long_text_is_cut_visibly(hostile_report: Path) -> None:
    text = records_by_path(hostile_report)["long.dcm"]["Manufacturer"]
    assert len(text) <= 32_767
    assert text.endswith(TRUNCATED)
    assert text == "A" * (32_767 - len(TRUNCATED)) + TRUNCATED


def test_numbers_stay_numbers(hostile_report: Path) -> None:
    row = records_by_path(hostile_report)["plus.dcm"]
    assert (row["rows"], type(row["rows"])) == (512, int)
    assert (row["mean"], type(row["mean"])) == (1.25, float)


def test_non_utf8_path(tmp_path: Path) -> None:
    name = os.fsdecode(b"scan\xff.dcm")
    shown = "sub/" + printable(name)
    assert shown == "sub/scan\\xff.dcm"
    report = write(tmp_path / "report.xlsx", [ReportRow(shown, "passed", make_record(shown, {}))])
    assert list(records_by_path(report)) == ["sub/scan\\xff.dcm"]


def test_hostile_run_facts_and_rule_description(hostile_report: Path) -> None:
    summary = summary_table(hostile_report)
    assert [row for row in summary if row[0] == "run"] == [
        ("run", "rules", HYPERLINK, None),
        ("run", "seed", "=1+1", None),
        ("run", "files", 8, None),
    ]
    rules = sheet_rows(hostile_report, "Rules")
    assert rules[1][7] == '=HYPERLINK("http://x","rules")'


# --- layout -----------------------------------------------------------------------------------


def test_sheets_in_order(hostile_report: Path) -> None:
    assert openpyxl.load_workbook(hostile_report).sheetnames == [
        "Summary",
        "Files",
        "Series",
        "Findings",
        "Dataset",
        "Rules",
        "Waivers",
    ]


def test_files_header(hostile_report: Path) -> None:
    header = sheet_rows(hostile_report, "Files")[0]
    assert list(header) == [*FIXED_HEADER, *VALUE_COLUMNS, "original-image", "big-enough"]


def test_one_files_row_per_report_row_in_order(hostile_report: Path) -> None:
    paths = [row[0] for row in sheet_rows(hostile_report, "Files")[1:]]
    assert paths == [*(f"{name}.dcm" for name in HOSTILE), "long.dcm"]


@pytest.fixture
def mixed_report(tmp_path: Path) -> Path:
    failed = make_record(
        "a/failed.dcm",
        {"ImageType": "DERIVED\\PRIMARY", "rows": 128, "mean": 0.5},
        [
            Finding("original-image", "error", "DERIVED\\PRIMARY", "to contain 'ORIGINAL'", "ImageType = DERIVED"),
            Finding("big-enough", "warning", "128", ">= 256", "pixel.rows = 128, expected >= 256"),
        ],
        verdict="failed",
        results={"original-image": "FAIL", "big-enough": "WARN"},
    )
    other = make_record(
        "b/other.png",
        {"notes": "PNG image"},
        kind="non-dicom",
        verdict="skipped",
        results=dict.fromkeys(["original-image", "big-enough"], "N/A"),
    )
    rows = [
        ReportRow("a/failed.dcm", "failed", failed),
        ReportRow("b/other.png", "skipped", other),
        ReportRow("c/never.dcm", "not run", None, error="interrupted"),
        ReportRow("d/crash.dcm", "crashed", None),
    ]
    return write(tmp_path / "mixed.xlsx", rows, run_facts=[("workers", 2)])


def test_files_rows(mixed_report: Path) -> None:
    rows = records_by_path(mixed_report)
    assert rows["a/failed.dcm"] == {
        "path": "a/failed.dcm",
        "kind": "dicom",
        "status": "failed",
        "failed_rules": "original-image",
        "warnings": "big-enough",
        "error": None,
        "checked": "this run",
        "split": None,
        "series": "a | (no series)",
        "ImageType": "DERIVED\\PRIMARY",
        "VOILUTFunction": None,
        "rows": 128,
        "mean": 0.5,
        "Manufacturer": None,
        "notes": None,
        "original-image": "FAIL",
        "big-enough": "WARN",
    }
    assert (rows["b/other.png"]["kind"], rows["b/other.png"]["status"], rows["b/other.png"]["notes"]) == (
        "non-dicom",
        "skipped",
        "PNG image",
    )


def test_not_run_row_is_written(mixed_report: Path) -> None:
    row = records_by_path(mixed_report)["c/never.dcm"]
    assert (row["path"], row["status"], row["error"]) == ("c/never.dcm", "not run", "interrupted")
    assert [row[name] for name in ["kind", "failed_rules", "warnings", *VALUE_COLUMNS]] == [None] * (
        3 + len(VALUE_COLUMNS)
    )
    assert (row["original-image"], row["big-enough"]) == (None, None)
    assert records_by_path(mixed_report)["d/crash.dcm"]["status"] == "crashed"


def test_summary_counts(mixed_report: Path) -> None:
    summary = [row[:3] for row in summary_table(mixed_report)]
    assert summary == [
        # the failed file and the crashed one; then what the run could not say
        ("verdict", "FAILED", "FAILED: 2 files failed; 1 file not checked; 1 dataset result not judged"),
        ("files", "total", 4),
        ("status", "passed", 0),
        ("status", "failed", 1),
        ("status", "skipped", 1),
        ("status", "waived", 0),
        ("status", "not run", 1),
        ("status", "crashed", 1),
        ("files", "failed with no rule failing", 1),  # the crashed one: no rule tally counts it
        ("kind", "dicom", 1),
        ("kind", "non-dicom", 1),
        ("rule", "original-image", 1),
        ("rule", "big-enough", 1),
        ("dataset", "dicom-files", "not judged"),  # two files have no record
        ("run", "workers", 2),
    ]
    details = {row[1]: row[3] for row in summary_table(mixed_report) if row[0] in ("rule", "dataset", "files")}
    counts = "waived 0, not applicable 1, not checked 2"
    assert details == {
        "total": None,
        "failed with no rule failing": "1 crashed file (worker died)",
        "original-image": f"error; applicable 1, passed 0, failed 1, warned 0, {counts}",
        "big-enough": f"warning; applicable 1, passed 0, failed 0, warned 1, {counts}",
        "dicom-files": "2 files of the dataset not checked in this run nor in the cache",
    }


def test_checked_column_names_the_earlier_run(tmp_path: Path) -> None:
    """A row from the cache (a partial run) says when it was checked; the others were checked now."""
    rows = [
        ReportRow("a.dcm", "passed", make_record("a.dcm", {})),
        ReportRow(
            "b.dcm",
            "failed",
            make_record("b.dcm", {}, verdict="failed", results={"original-image": "FAIL"}),
            earlier="2026-11-30T09:15:00+00:00",
        ),
    ]
    report = write(tmp_path / "report.xlsx", rows)
    assert [(path, row["status"], row["checked"]) for path, row in records_by_path(report).items()] == [
        ("a.dcm", "passed", "this run"),
        ("b.dcm", "failed", "earlier run 2026-11-30T09:15:00+00:00"),
    ]
    summary = [row[:3] for row in summary_table(report) if row[0] == "files"]
    assert summary == [("files", "total", 2), ("files", "from earlier runs", 1)]


def test_findings_sheet(mixed_report: Path) -> None:
    assert sheet_rows(mixed_report, "Findings") == [
        ("path", "rule", "severity", "observed", "expected", "message", "waiver"),
        (
            "a/failed.dcm",
            "original-image",
            "error",
            "DERIVED\\PRIMARY",
            "to contain 'ORIGINAL'",
            "ImageType = DERIVED",
            None,
        ),
        ("a/failed.dcm", "big-enough", "warning", "128", ">= 256", "pixel.rows = 128, expected >= 256", None),
        ("c/never.dcm", "(file)", "error", "not run", None, "interrupted", None),
    ]


def test_rules_sheet(mixed_report: Path) -> None:
    assert sheet_rows(mixed_report, "Rules") == [
        ("id", "severity", "target", "operator", "expected", "allow_missing", "when", "description", "line"),
        (
            "original-image",
            "error",
            "ImageType",
            "contains",
            "to contain 'ORIGINAL'",
            False,
            None,
            '=HYPERLINK("http://x","rules")',
            3,
        ),
        ("big-enough", "warning", "pixel.rows", "min", ">= 256", False, "Modality one of [CT, MR]", None, 7),
    ]


def test_empty_run(tmp_path: Path) -> None:
    report = write(tmp_path / "empty.xlsx", [])
    assert sheet_rows(report, "Files") == [(*FIXED_HEADER, *VALUE_COLUMNS, "original-image", "big-enough")]
    assert sheet_rows(report, "Findings") == [("path", "rule", "severity", "observed", "expected", "message", "waiver")]


# --- atomic writing ---------------------------------------------------------------------------


_REAL_CLOSE = xlsxwriter.Workbook.close


def _failing_save(self: xlsxwriter.Workbook) -> None:
    """Writes the whole temporary file, then fails as a full disk or a failing fsync would."""
    _REAL_CLOSE(self)
    raise OSError(28, "No space left on device")


def test_failed_save_keeps_previous_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = write(tmp_path / "report.xlsx", hostile_rows())
    before = report.read_bytes()
    monkeypatch.setattr(xlsxwriter.Workbook, "close", _failing_save)
    with pytest.raises(OSError, match="No space left on device"):
        write(report, [ReportRow("other.dcm", "not run")])
    assert report.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["report.xlsx"]


def test_failed_save_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsxwriter.Workbook, "close", _failing_save)
    with pytest.raises(OSError, match="No space left on device"):
        write(tmp_path / "report.xlsx", hostile_rows())
    assert os.listdir(tmp_path) == []


def test_interrupted_save_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: xlsxwriter.Workbook) -> None:
        _REAL_CLOSE(self)
        raise KeyboardInterrupt

    report = write(tmp_path / "report.xlsx", [])
    before = report.read_bytes()
    monkeypatch.setattr(xlsxwriter.Workbook, "close", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write(report, hostile_rows())
    assert report.read_bytes() == before
    assert os.listdir(tmp_path) == ["report.xlsx"]


def test_rewrite_replaces_previous_report(tmp_path: Path) -> None:
    report = write(tmp_path / "report.xlsx", hostile_rows())
    write(report, [ReportRow("only.dcm", "not run")])
    assert list(records_by_path(report)) == ["only.dcm"]
    assert os.listdir(tmp_path) == ["report.xlsx"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_report_permissions_follow_umask(tmp_path: Path) -> None:
    probe = tmp_path / "probe.txt"
    probe.write_text("", encoding="utf-8")  # created the ordinary way, so its mode reflects the umask
    report = write(tmp_path / "report.xlsx", [])
    assert stat.S_IMODE(report.stat().st_mode) == stat.S_IMODE(probe.stat().st_mode)


def test_the_temporary_file_is_never_a_planted_link(tmp_path: Path) -> None:
    """Issue 12: the report was written to ``.<report>.<pid>.tmp``, opened through any link found
    there: whoever can write a shared report folder could make a run overwrite their victim. The
    name is no longer predictable, and the file is created exclusively (O_EXCL | O_NOFOLLOW)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    report = tmp_path / "rep.xlsx"
    pid = os.getpid()  # alive: its files are not taken for leftovers, the links stay in place
    planted = [f".rep.xlsx.{pid}.tmp", f".rep.xlsx.{pid}.dicomqc-partial", f".rep.xlsx.{pid}..dicomqc-partial"]
    for name in planted:
        (tmp_path / name).symlink_to(victim)
    write(report, [ReportRow("only.dcm", "not run")])
    assert victim.read_text() == "precious"
    assert not report.is_symlink()
    assert sheet_rows(report, "Files")[1][:3] == ("only.dcm", None, "not run")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*planted, "rep.xlsx", "victim.txt"])


def test_leftovers_of_killed_runs_are_removed_and_the_mode_follows_the_umask(tmp_path: Path) -> None:
    """A run killed while writing leaves ``.<report>.<pid>.<random>.dicomqc-partial``; the next run
    removes it when that process is gone, and leaves a live process's file (a concurrent run) alone."""
    dead = tmp_path / ".rep.xlsx.2147483646.abcd1234.dicomqc-partial"  # above any pid_max
    alive = tmp_path / f".rep.xlsx.{os.getpid()}.efgh5678.dicomqc-partial"
    other = tmp_path / ".other.xlsx.2147483646.abcd1234.dicomqc-partial"
    for leftover in (dead, alive, other):
        leftover.write_bytes(b"half a workbook")
    mask = os.umask(0o027)
    try:
        write(tmp_path / "rep.xlsx", [ReportRow("only.dcm", "not run")])
    finally:
        os.umask(mask)
    assert (dead.exists(), alive.exists(), other.exists()) == (False, True, True)
    assert stat.S_IMODE((tmp_path / "rep.xlsx").stat().st_mode) == 0o640
