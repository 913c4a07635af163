"""The rules language through pytest: strict mode, thresholds, waivers, non-DICOM globs, lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Runner, read_sheet, write_dicom

# Expiry dates far from any day the tests run on, so that a run across midnight cannot flip them;
# the boundary itself (a waiver ends on its date) is tested with a frozen today in test_rules_language.
NOT_YET_EXPIRED = "2999-12-31"
EXPIRED = "2001-01-01"


def rules(pytester: pytest.Pytester, text: str) -> None:
    (pytester.path / "rules.yaml").write_text("version: 1\n" + text)


def test_warning_passes_and_strict_fails(run: Runner) -> None:
    rules(run.pytester, "rules:\n  - id: thin\n    tag: SliceThickness\n    max: 2\n    severity: warning\n")
    write_dicom(run.pytester.path / "data" / "thick.dcm", SliceThickness="5.0")
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=1)
    result = run("--dicom-dir=data", "--dicom-strict", "--dicom-report=strict.xlsx")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["thin: SliceThickness = 5.0, expected <= 2"])
    row = read_sheet(run.pytester.path / "strict.xlsx")[0]
    assert (row["status"], row["failed_rules"], row["thin"]) == ("failed", "thin", "FAIL")


def test_strict_from_ini(pytester: pytest.Pytester) -> None:
    rules(pytester, "rules:\n  - id: thin\n    tag: SliceThickness\n    max: 2\n    severity: warning\n")
    write_dicom(pytester.path / "data" / "thick.dcm", SliceThickness="5.0")
    pytester.makeini("[pytest]\ndicom_dir = data\ndicom_strict = true\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=1)


THRESHOLD = "rules:\n  - id: original-image\n    tag: ImageType\n    contains: ORIGINAL\n    max_failing: {limit}\n"


@pytest.mark.parametrize(("limit", "derived", "passed"), [("20%", 2, True), ("20%", 3, False), ("2", 2, True)])
def test_max_failing_is_a_dataset_verdict(run: Runner, limit: str, derived: int, passed: bool) -> None:
    rules(run.pytester, THRESHOLD.format(limit=limit))
    for index in range(10):
        image_type = "DERIVED\\SECONDARY" if index < derived else "ORIGINAL\\PRIMARY"
        write_dicom(run.pytester.path / "data" / f"{index:02d}.dcm", image_type=image_type)
    result = run("--dicom-dir=data", "-rA")
    share = f"{10 * derived:.1f}%"
    verdict = f"{derived} of 10 applicable files fail rule 'original-image' ({share}), "
    verdict += f"{'within' if passed else 'above'} max_failing {limit}"
    if passed:
        result.assert_outcomes(passed=11)
        assert result.ret == 0
        result.stdout.fnmatch_lines(["PASSED dicomqc::rule::original-image"])
    else:
        result.assert_outcomes(passed=10, failed=1)
        assert result.ret == 1
        result.stdout.fnmatch_lines(["FAILED dicomqc::rule::original-image*"])
    result.stdout.fnmatch_lines([f"dicomqc rule original-image: {verdict}"])
    report = run.pytester.path / "metadata_dicom.xlsx"
    files = read_sheet(report)
    assert [r["original-image"] for r in files] == ["WARN"] * derived + ["PASS"] * (10 - derived)
    assert {r["status"] for r in files} == {"passed"}
    summary = {(r["section"], r["item"]): (r["value"], r["detail"]) for r in read_sheet(report, "Summary")}
    assert summary[("threshold", "original-image")] == ("passed" if passed else "failed", verdict)


def test_max_failing_junitxml_has_the_verdict(pytester: pytest.Pytester) -> None:
    rules(pytester, THRESHOLD.format(limit="0"))
    write_dicom(pytester.path / "data" / "d.dcm", image_type="DERIVED")
    result = pytester.runpytest("--dicom-dir=data", "--junitxml=j.xml", "-p", "no:cacheprovider")
    assert result.ret == 1
    xml = (pytester.path / "j.xml").read_text()
    verdict = "1 of 1 applicable files fail rule 'original-image' (100.0%), above max_failing 0"
    testcase = xml[xml.index('<testcase classname="dicomqc.rule" name="original-image"') :].split("</testcase>")[0]
    assert f'<failure message="{verdict}">' in testcase
    assert '<property name="dicomqc_status" value="failed" />' in testcase


WAIVED_RULES = """rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
waivers:
  - id: legacy-scans
    path: "legacy/**"
    rules: [original-image]
    reason: Reconstructed legacy series, accepted by the data board on 2026-10-01
    expires: {expires}
  - id: one-uid
    sop_instance_uid: "1.2.3.4.5"
    rules: "*"
    reason: Known secondary capture kept for calibration
  - id: never-used
    path: "nowhere/**"
    rules: [original-image]
    reason: Old exception
"""


def test_waivers_by_glob_and_uid_stale_and_expired(run: Runner) -> None:
    rules(run.pytester, WAIVED_RULES.format(expires=NOT_YET_EXPIRED))
    data = run.pytester.path / "data"
    write_dicom(data / "legacy" / "a" / "old.dcm", image_type="DERIVED")
    write_dicom(data / "new" / "calib.dcm", image_type="DERIVED", SOPInstanceUID="1.2.3.4.5")
    write_dicom(data / "new" / "bad.dcm", image_type="DERIVED")
    result = run("--dicom-dir=data", "-rxX")
    result.assert_outcomes(failed=1, xfailed=2)
    result.stdout.fnmatch_lines(["*waived: original-image (legacy-scans)*", "*waived: original-image (one-uid)*"])
    result.stdout.fnmatch_lines(
        [f"dicomqc waiver never-used ({run.pytester.path / 'rules.yaml'}:16) matched no finding (stale)"]
    )
    report = run.pytester.path / "metadata_dicom.xlsx"
    files = {r["path"]: (r["status"], r["original-image"]) for r in read_sheet(report)}
    assert files == {
        "legacy/a/old.dcm": ("waived", "WAIVED"),
        "new/bad.dcm": ("failed", "FAIL"),
        "new/calib.dcm": ("waived", "WAIVED"),
    }
    waivers = {r["id"]: (r["status"], r["files"]) for r in read_sheet(report, "Waivers")}
    assert waivers == {"legacy-scans": ("active", 1), "one-uid": ("active", 1), "never-used": ("stale", 0)}
    findings = {(r["path"], r["waiver"]) for r in read_sheet(report, "Findings")}
    assert ("legacy/a/old.dcm", "legacy-scans") in findings


def test_expired_waiver_no_longer_applies(run: Runner) -> None:
    rules(run.pytester, WAIVED_RULES.format(expires=EXPIRED))
    write_dicom(run.pytester.path / "data" / "legacy" / "old.dcm", image_type="DERIVED")
    result = run("--dicom-dir=data")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"dicomqc waiver legacy-scans (*rules.yaml:7) expired on {EXPIRED}"])
    waivers = {r["id"]: r["status"] for r in read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Waivers")}
    assert waivers["legacy-scans"] == "expired"


def test_waivers_file_option(pytester: pytest.Pytester) -> None:
    rules(pytester, "rules:\n  - id: original-image\n    tag: ImageType\n    contains: ORIGINAL\n")
    (pytester.path / "waivers.yaml").write_text(
        "version: 1\nwaivers:\n  - path: '*.dcm'\n    rules: [original-image]\n    reason: accepted\n"
    )
    write_dicom(pytester.path / "data" / "d.dcm", image_type="DERIVED")
    result = pytester.runpytest("--dicom-dir=data", "--dicom-waivers=waivers.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1)


def test_non_dicom_globs(run: Runner) -> None:
    rules(run.pytester, "non_dicom:\n  default: fail\n  pass: ['**/*.json']\n  skip: ['docs/**']\nrules: []\n")
    data = run.pytester.path / "data"
    (data / "docs").mkdir(parents=True)
    (data / "labels.json").write_text("{}")
    (data / "docs" / "readme.txt").write_text("hi")
    (data / "notes.txt").write_text("hi")
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    statuses = {r["path"]: r["status"] for r in read_sheet(run.pytester.path / "metadata_dicom.xlsx")}
    assert statuses == {"docs/readme.txt": "skipped", "labels.json": "passed", "notes.txt": "failed"}


BAD = """version: 1
rules:
  - id: original-image
    tag: ImageType
    contians: ORIGINAL
"""


def test_rules_check_option(pytester: pytest.Pytester) -> None:
    rules(pytester, "rules:\n  - id: min-rows\n    tag: Rows\n    min: 1\n")
    result = pytester.runpytest("--dicom-rules-check")  # no dataset needed, none read
    assert result.ret == 0
    valid = "valid: 1 rules (0 warning, 0 with max_failing), 0 dataset checks, 0 waivers (0 expired)"
    result.stdout.fnmatch_lines([f"*rules.yaml: {valid}"])
    (pytester.path / "rules.yaml").write_text(BAD)
    result = pytester.runpytest("--dicom-rules-check")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: *rules.yaml:5:5: unknown rule key 'contians' (did you mean 'contains'?)"])


def test_lint_command(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    command = [sys.executable, "-m", "pytest_dicomqc", "lint", str(tmp_path / "bad.yaml")]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 4
    assert (
        completed.stderr
        == f"ERROR: {tmp_path / 'bad.yaml'}:5:5: unknown rule key 'contians' (did you mean 'contains'?)\n"
    )
    (tmp_path / "good.yaml").write_text(BAD.replace("contians", "contains"))
    (tmp_path / "waivers.yaml").write_text(
        "version: 1\nwaivers:\n  - path: 'x/**'\n    rules: [original-imag]\n    reason: r\n"
    )
    command = [sys.executable, "-m", "pytest_dicomqc", "lint", str(tmp_path / "good.yaml")]
    completed = subprocess.run([*command, "--waivers", str(tmp_path / "waivers.yaml")], capture_output=True, text=True)
    assert completed.returncode == 4
    assert "waivers.yaml:4:12: waiver 'W1': unknown rule id 'original-imag' (did you mean 'original-image'?)" in (
        completed.stderr
    )
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert (completed.returncode, completed.stdout.split(": valid: ")[1]) == (
        0,
        "1 rules (0 warning, 0 with max_failing), 0 dataset checks, 0 waivers (0 expired)\n",
    )


def test_partial_runs_give_no_threshold_and_no_stale_verdict(pytester: pytest.Pytester) -> None:
    rules(
        pytester,
        THRESHOLD.format(limit="0")
        + WAIVED_RULES.format(expires=NOT_YET_EXPIRED).split("waivers:\n")[1].join(["waivers:\n", ""]),
    )
    for index in range(4):
        write_dicom(pytester.path / "data" / f"{index}.dcm", image_type="DERIVED" if index == 0 else "ORIGINAL")
    result = pytester.runpytest("--dicom-dir=data", "-k", "1 or 2", "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=2, deselected=2)  # no dicomqc::rule::original-image result
    result.stdout.fnmatch_lines(["dicomqc waiver never-used (*) waived nothing in this partial run"])
    assert "(stale)" not in result.stdout.str()
    statuses = {r["id"]: r["status"] for r in read_sheet(pytester.path / "metadata_dicom.xlsx", "Waivers")}
    assert statuses["never-used"] == "unused in this partial run"
