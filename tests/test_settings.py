"""Options and their ini twins: precedence, paths relative to where they were given, errors naming the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_sheet, write_dicom

STRICT_RULES = "version: 1\nrules:\n  - id: tiny\n    pixel: rows\n    max: 4\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    write_dicom(pytester.path / "cfg" / "data" / "one.dcm")
    (pytester.path / "cfg" / "strict.yaml").write_text(STRICT_RULES)
    return pytester.path


def test_ini_twins_are_relative_to_the_ini_file(pytester: pytest.Pytester, project: Path) -> None:
    ini = project / "cfg" / "pytest.ini"
    ini.write_text("[pytest]\ndicom_dir = data\ndicom_rules = strict.yaml\ndicom_report = out/qc.xlsx\n")
    result = pytester.runpytest("-c", str(ini), "--rootdir", str(project / "cfg"), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)  # the ini's rules file, not the packaged default
    result.stdout.fnmatch_lines([f"dicomqc rules: {project / 'cfg' / 'strict.yaml'}"])
    rows = read_sheet(project / "cfg" / "out" / "qc.xlsx")
    assert [(r["path"], r["failed_rules"]) for r in rows] == [("one.dcm", "tiny")]


def test_command_line_wins_over_ini(pytester: pytest.Pytester, project: Path) -> None:
    write_dicom(project / "other" / "two.dcm")
    (project / "cfg" / "pytest.ini").write_text("[pytest]\ndicom_dir = data\ndicom_rules = strict.yaml\n")
    args = ("-c", "cfg/pytest.ini", "--rootdir", ".", "-p", "no:cacheprovider")
    result = pytester.runpytest(*args, "--dicom-dir=other", "--dicom-report=cli.xlsx", "--dicom-rules=cfg/strict.yaml")
    result.assert_outcomes(failed=1)
    assert [r["path"] for r in read_sheet(project / "cli.xlsx")] == ["two.dcm"]
    assert not (project / "cfg" / "metadata_dicom.xlsx").exists()


def test_missing_rules_file_names_its_source(pytester: pytest.Pytester, project: Path) -> None:
    ini = project / "cfg" / "pytest.ini"
    ini.write_text("[pytest]\ndicom_dir = data\ndicom_rules = nope.yaml\n")
    result = pytester.runpytest("-c", str(ini), "--rootdir", str(project / "cfg"))
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [f"ERROR: dicom_rules in {ini}: rules file {project / 'cfg' / 'nope.yaml'} does not exist"]
    )


def test_rules_yaml_in_rootdir_is_the_default(pytester: pytest.Pytester, project: Path) -> None:
    (project / "rules.yaml").write_text(STRICT_RULES)
    result = pytester.runpytest("--dicom-dir=cfg/data", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"dicomqc rules: {project / 'rules.yaml'}"])
