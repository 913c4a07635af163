"""Item outcomes and exit codes: pass, fail with compact text, skip, usage errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

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
    result.assert_outcomes(passed=2)  # the file and dicomqc::dicom-files
    assert result.ret == 0


def test_failure_text_is_compact_and_exit_1(run: Runner, project: Path) -> None:
    write_dicom(project / "derived.dcm", image_type="DERIVED\\SECONDARY", VOILUTFunction="LOG")
    result = run("--dicom-dir=data", "-rf")
    result.assert_outcomes(failed=1, passed=1)  # passed: dicomqc::dicom-files
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
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "dicomqc: PASSED with 1 warning: rule::rows-small warned on 1 file",
            "dicomqc: 1 file: 1 passed",
            "dicomqc rule rows-small (warning): 1 warned of 1 applicable files",
            "dicomqc dicom-files passed: 1 DICOM file checked in data/; at least 1 required",
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
    result.assert_outcomes(failed=2, skipped=1)  # no DICOM file checked: dicomqc::dicom-files fails too
    result.stdout.fnmatch_lines(
        [
            "*SKIPPED*non-dicom: JPEG image*",
            "FAILED data/broken.dcm::dicomqc - unreadable: *",
            "FAILED dicomqc::dicom-files - 0 DICOM files checked in data/: 1 unreadable fi*",
        ]
    )


def test_non_dicom_policy_fail(run: Runner, pytester: pytest.Pytester, project: Path) -> None:
    (pytester.path / "rules.yaml").write_text(RULES + "non_dicom: fail\n")
    project.mkdir()
    (project / "notes.txt").write_text("hello")
    result = run("--dicom-dir=data", "-rf")
    result.assert_outcomes(failed=2)  # the file and dicomqc::dicom-files (no DICOM file checked)
    result.stdout.fnmatch_lines(
        [
            "FAILED data/notes.txt::dicomqc - non-DICOM file (text file) and the rules say*",
            "FAILED dicomqc::dicom-files - 0 DICOM files checked in data/: 1 text file; at*",
        ]
    )


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
    result.assert_outcomes(failed=1, passed=1)  # passed: dicomqc::dicom-files
    result.stdout.fnmatch_lines(["no-names: PatientName = <present, identifying value not shown>, expected absent"])
    report = pytester.path / "metadata_dicom.xlsx"
    cells = [str(v) for sheet in ("Files", "Findings") for row in read_sheet(report, sheet) for v in row.values()]
    assert not any("Doe" in text for text in cells)
    assert "Doe" not in result.stdout.str() + (pytester.path / "junit.xml").read_text()


def test_ini_values_and_errors_name_the_ini_file(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\ndicom_dir = missing\n")
    result = pytester.runpytest()
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            f"ERROR: dicom_dir in {ini}: dataset directory {pytester.path / 'missing'} does not exist"
            " (fetch the data first, e.g. git lfs pull or dvc pull;"
            " to run only the tests without it: pytest -m 'not dicomqc', or give test paths)"
        ]
    )


def test_junitxml_shape_of_file_items(run: Runner, project: Path) -> None:
    """CI reads junitxml: a file item's test case (class ``dicomqc``, name its dataset path), failure
    message and skip message, and the dataset result's test case with its properties."""
    write_dicom(project / "ct" / "ok.dcm")
    write_dicom(project / "ct" / "derived.dcm", image_type="DERIVED\\SECONDARY", VOILUTFunction="LOG")
    (project / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    result = run("--dicom-dir=data", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=1, skipped=1)  # passed: ok.dcm, dicomqc::dicom-files
    suite = ET.parse(run.pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {(case.get("classname"), case.get("name")): case for case in suite.iter("testcase")}
    assert sorted(cases) == [
        ("dicomqc", "ct/derived.dcm"),
        ("dicomqc", "ct/ok.dcm"),
        ("dicomqc", "dicom-files"),
        ("dicomqc", "photo.jpg"),
    ]
    assert [child.tag for child in cases[("dicomqc", "ct/ok.dcm")]] == []
    failure = cases[("dicomqc", "ct/derived.dcm")].find("failure")
    assert failure is not None
    assert failure.get("message") == "original-image: ImageType = DERIVED\\SECONDARY, expected to contain 'ORIGINAL'"
    assert failure.text == (
        "original-image: ImageType = DERIVED\\SECONDARY, expected to contain 'ORIGINAL'\n"
        "voi-lut-function: VOILUTFunction = LOG, expected one of [LINEAR, LINEAR_EXACT, SIGMOID]"
    )
    skipped = cases[("dicomqc", "photo.jpg")].find("skipped")
    assert skipped is not None
    assert (skipped.get("type"), skipped.get("message")) == ("pytest.skip", "non-dicom: JPEG image")
    assert skipped.text == "photo.jpg: non-dicom: JPEG image"  # the dataset path, no line number
    dicom_files = cases[("dicomqc", "dicom-files")]
    assert [child.tag for child in dicom_files] == ["properties"]
    properties = [(p.get("name"), p.get("value")) for p in dicom_files.iter("property")]
    assert properties == [
        ("dicomqc_status", "passed"),
        ("dicomqc_message", "2 DICOM files checked in data/: 1 JPEG image; at least 1 required"),
    ]


def test_non_dicom_fail_and_unreadable_have_a_file_finding(
    run: Runner, pytester: pytest.Pytester, project: Path
) -> None:
    """Under non_dicom: fail a stray file fails with a Findings row of its own, as an unreadable file does."""
    (pytester.path / "rules.yaml").write_text(RULES + "non_dicom: fail\n")
    project.mkdir()
    (project / "notes.txt").write_text("hello")
    (project / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    result = run("--dicom-dir=data", "-rf")
    result.assert_outcomes(failed=3)  # and dicomqc::dicom-files: no DICOM file checked
    result.stdout.fnmatch_lines(
        [
            "FAILED data/notes.txt::dicomqc - non-DICOM file (text file) and the rules say*",
            "FAILED dicomqc::dicom-files - 0 DICOM files checked in data/: 1 unreadable fi*",
        ]
    )
    report = pytester.path / "metadata_dicom.xlsx"
    files = {r["path"]: (r["kind"], r["status"], r["failed_rules"]) for r in read_sheet(report)}
    assert files == {"broken.dcm": ("unreadable", "failed", None), "notes.txt": ("non-dicom", "failed", None)}
    error = next(r["error"] for r in read_sheet(report) if r["path"] == "broken.dcm")
    assert error.startswith("not a valid DICOM file")
    assert read_sheet(report, "Findings") == [
        {
            "path": "broken.dcm",
            "rule": "(file)",
            "severity": "error",
            "observed": "unreadable",
            "expected": "readable DICOM with decodable pixels",
            "message": error,
            "waiver": None,
        },
        {
            "path": "notes.txt",
            "rule": "(file)",
            "severity": "error",
            "observed": "non-dicom",
            "expected": "DICOM",
            "message": "non-DICOM files fail (non_dicom: fail)",
            "waiver": None,
        },
    ]


IDENTIFYING_RULES = """\
version: 1
rules:
  - {id: no-birth-date, tag: PatientBirthDate, present: false}
  - {id: our-accession, tag: AccessionNumber, matches: "X[0-9]+", message: "accession {observed} is not ours"}
  - {id: known-referrer, tag: ReferringPhysicianName, in: [Nobody]}
"""
REDACTED = "<present, identifying value not shown>"


def test_identifying_values_of_every_kind_are_never_shown(
    run: Runner, pytester: pytest.Pytester, project: Path
) -> None:
    """Birth dates, accession numbers and any person name (VR PN) are withheld wherever a finding is shown."""
    import openpyxl

    (pytester.path / "rules.yaml").write_text(IDENTIFYING_RULES)
    clear: dict[str, Any] = {
        "PatientBirthDate": "19610523",
        "AccessionNumber": "ACC98765",
        "ReferringPhysicianName": "Smith^Roberta",
    }
    write_dicom(project / "named.dcm", **clear)
    result = run("--dicom-dir=data", "--junitxml=junit.xml", "-rf")
    result.assert_outcomes(failed=1, passed=1)  # passed: dicomqc::dicom-files
    lines = [
        f"no-birth-date: PatientBirthDate = {REDACTED}, expected absent",
        f"our-accession: accession {REDACTED} is not ours",
        f"known-referrer: ReferringPhysicianName = {REDACTED}, expected one of [Nobody]",
    ]
    result.stdout.fnmatch_lines(lines, consecutive=True)
    junit = (pytester.path / "junit.xml").read_text()
    failure = ET.fromstring(junit).find("testsuite/testcase/failure")
    assert failure is not None
    assert (failure.get("message"), failure.text) == (lines[0], "\n".join(lines))
    report = pytester.path / "metadata_dicom.xlsx"
    findings = [(r["rule"], r["observed"], r["message"]) for r in read_sheet(report, "Findings")]
    assert findings == [
        ("no-birth-date", REDACTED, lines[0].split(": ", 1)[1]),
        ("our-accession", REDACTED, lines[1].split(": ", 1)[1]),
        ("known-referrer", REDACTED, lines[2].split(": ", 1)[1]),
    ]
    workbook = openpyxl.load_workbook(report)
    cells = [str(cell) for sheet in workbook for row in sheet.iter_rows(values_only=True) for cell in row]
    shown = "\n".join([*cells, result.stdout.str(), result.stderr.str(), junit])
    for value in (*clear.values(), "Smith", "Roberta", "1961-05-23"):
        assert value not in shown
