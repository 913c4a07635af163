"""Item outcomes and exit codes: pass, fail with compact text, skip, usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Runner, write_dicom

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
    result.stdout.fnmatch_lines(["dicomqc: 1 files: 1 passed"])


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


def test_unwritable_report_path_is_usage_error(run: Runner, project: Path) -> None:
    write_dicom(project / "ok.dcm")
    result = run("--dicom-dir=data", "--dicom-report=no/such/folder/r.xlsx")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --dicom-report: folder of report */no/such/folder/r.xlsx does not exist"])


def test_ini_values_and_errors_name_the_ini_file(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\ndicom_dir = missing\n")
    result = pytester.runpytest()
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: dicom_dir in {ini}: dataset directory * does not exist"])
