"""Item outcomes and exit codes: pass, fail with compact text, skip, usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Runner, read_sheet, write_dicom

RULES = """\
version: 1
rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
  - id: voi-lut-function
    tag: VOILUTFunction
    in: [LINEAR, LINEAR_EXACT, SIGMOID]
    allow_missing: true
  - id: rows-small
    pixel: rows
    max: 16
    severity: warning
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    (pytester.path / "rules.yaml").write_text(RULES)
    return pytester.path / "data"


def test_all_pass_exit_0(run: Runner, project: Path) -> None:
    write_dicom(project / "ok.dcm", VOILUTFunction="LINEAR")
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=1)
    assert result.ret == 0


def test_failure_text_is_compact_and_exit_1(run: Runner, project: Path) -> None:
    write_dicom(project / "derived.dcm", image_type="DERIVED\\SECONDARY", VOILUTFunction="LOG")
    result = run("--dicom-dir=data", "-rf")
    result.assert_outcomes(failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "original-image: ImageType = DERIVED\\SECONDARY, expected to contain 'ORIGINAL'",
            "voi-lut-function: VOILUTFunction = LOG, expected one of [LINEAR, LINEAR_EXACT, SIGMOID]",
            "FAILED data/derived.dcm::dicomqc - original-image*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()


def test_warning_does_not_fail(run: Runner, project: Path) -> None:
    write_dicom(project / "big.dcm", pixels=__import__("numpy").zeros((32, 32), "int16"))
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "dicomqc: 1 file: 1 passed; 1 with rule warnings (rows-small: 1)",
            f"dicomqc rules: {run.pytester.path / 'rules.yaml'}",
            f"dicomqc report: {run.pytester.path / 'metadata_dicom.xlsx'}",
        ]
    )
    assert read_sheet(run.pytester.path / "metadata_dicom.xlsx")[0]["warnings"] == "rows-small"


def test_non_dicom_is_skipped_and_unreadable_fails(run: Runner, project: Path) -> None:
    project.mkdir()
    (project / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    (project / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    result = run("--dicom-dir=data", "-rsf")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*non-dicom: JPEG image*", "FAILED data/broken.dcm::dicomqc - unreadable: *"])


def test_non_dicom_policy_fail(run: Runner, pytester: pytest.Pytester, project: Path) -> None:
    (pytester.path / "rules.yaml").write_text(RULES + "non_dicom: fail\n")
    project.mkdir()
    (project / "notes.txt").write_text("hello")
    result = run("--dicom-dir=data")
    result.assert_outcomes(failed=1)


def test_missing_dicom_dir_is_usage_error(run: Runner, pytester: pytest.Pytester) -> None:
    result = run("--dicom-dir=nope")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: --dicom-dir: dataset directory {pytester.path / 'nope'} does not exist"])
    assert "Traceback" not in result.stderr.str()


def test_bad_rules_file_is_one_error_line_with_location(run: Runner, pytester: pytest.Pytester, project: Path) -> None:
    write_dicom(project / "ok.dcm")
    bad_rules = "version: 1\nrules:\n  - id: x\n    tag: ImageType\n    contain: ORIGINAL\n"
    (pytester.path / "bad.yaml").write_text(bad_rules)
    result = run("--dicom-dir=data", "--dicom-rules=bad.yaml")
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert errors == [f"ERROR: {pytester.path / 'bad.yaml'}:5:5: unknown rule key 'contain' (did you mean 'contains'?)"]
    assert not (pytester.path / "metadata_dicom.xlsx").exists()


def test_report_folders_are_created(run: Runner, project: Path) -> None:
    write_dicom(project / "ok.dcm")
    result = run("--dicom-dir=data", "--dicom-report=reports/qc/r.xlsx")
    assert result.ret == 0
    assert [row["path"] for row in read_sheet(run.pytester.path / "reports" / "qc" / "r.xlsx")] == ["ok.dcm"]


@pytest.mark.parametrize(
    ("report", "error"),
    [
        ("afile/r.xlsx", "ERROR: --dicom-report: cannot create the folder of report */afile/r.xlsx: */afile is a file"),
        (
            "report.csv",
            "ERROR: --dicom-report: report */report.csv must be an .xlsx file (an Excel workbook is written)",
        ),
        ("adir.xlsx", "ERROR: --dicom-report: report path */adir.xlsx is a directory"),
    ],
)
def test_unwritable_report_path_is_usage_error(run: Runner, project: Path, report: str, error: str) -> None:
    write_dicom(project / "ok.dcm")
    (run.pytester.path / "afile").write_text("")
    (run.pytester.path / "adir.xlsx").mkdir()
    result = run("--dicom-dir=data", f"--dicom-report={report}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([error])


def test_empty_dicom_dir_is_usage_error(run: Runner, project: Path) -> None:
    result = run("--dicom-dir=")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --dicom-dir: empty dataset directory (give the folder to check)"])


def test_skip_reason_names_the_file(run: Runner, project: Path) -> None:
    project.mkdir()
    (project / "notes.txt").write_text("hello")
    result = run("--dicom-dir=data", "-rs")
    result.stdout.fnmatch_lines(["SKIPPED [1] data/notes.txt: non-dicom: text file"])


def test_identifying_values_never_shown(run: Runner, pytester: pytest.Pytester, project: Path) -> None:
    rules = "version: 1\nrules:\n  - id: no-names\n    tag: PatientName\n    present: false\n"
    (pytester.path / "rules.yaml").write_text(rules)
    write_dicom(project / "named.dcm", PatientName="Doe^Jane")
    result = run("--dicom-dir=data", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["no-names: PatientName = <present, identifying value not shown>, expected absent"])
    report = pytester.path / "metadata_dicom.xlsx"
    cells = [str(v) for sheet in ("Files", "Findings") for row in read_sheet(report, sheet) for v in row.values()]
    assert not any("Doe" in text for text in cells)
    assert "Doe" not in result.stdout.str() + (pytester.path / "junit.xml").read_text()


def test_ini_values_and_errors_name_the_ini_file(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\ndicom_dir = missing\n")
    result = pytester.runpytest()
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: dicom_dir in {ini}: dataset directory * does not exist"])
