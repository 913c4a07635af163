"""The rules language through pytest: strict mode, thresholds, waivers, non-DICOM globs, lint."""

from __future__ import annotations

import importlib
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
    result.assert_outcomes(passed=2)  # the file and dicomqc::dicom-files
    result.stdout.fnmatch_lines(["dicomqc rule thin (warning): 1 warned of 1 applicable files"])
    result = run("--dicom-dir=data", "--dicom-strict", "--dicom-report=strict.xlsx")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["thin: SliceThickness = 5.0, expected <= 2", "dicomqc rule thin (warning): 1 failed of 1 applicable files"]
    )
    row = read_sheet(run.pytester.path / "strict.xlsx")[0]
    assert (row["status"], row["failed_rules"], row["thin"]) == ("failed", "thin", "FAIL")


def test_strict_from_ini(pytester: pytest.Pytester) -> None:
    rules(pytester, "rules:\n  - id: thin\n    tag: SliceThickness\n    max: 2\n    severity: warning\n")
    write_dicom(pytester.path / "data" / "thick.dcm", SliceThickness="5.0")
    pytester.makeini("[pytest]\ndicom_dir = data\ndicom_strict = true\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=1, passed=1)  # passed: dicom-files


THRESHOLD = "rules:\n  - id: original-image\n    tag: ImageType\n    contains: ORIGINAL\n    max_failing: {limit}\n"


@pytest.mark.parametrize(("limit", "derived", "passed"), [("20%", 2, True), ("20%", 3, False), ("2", 2, True)])
def test_max_failing_is_a_dataset_verdict(run: Runner, limit: str, derived: int, passed: bool) -> None:
    rules(run.pytester, THRESHOLD.format(limit=limit))
    for index in range(10):
        image_type = "DERIVED\\SECONDARY" if index < derived else "ORIGINAL\\PRIMARY"
        write_dicom(run.pytester.path / "data" / f"{index:02d}.dcm", image_type=image_type)
    result = run("--dicom-dir=data", "-rA", "-v")  # -v: plugin lines are not cut to the terminal width
    share = f"{10 * derived:.1f}%"
    verdict = f"{derived} of 10 applicable files fail rule 'original-image' ({share}), "
    verdict += f"{'within' if passed else 'above'} max_failing {limit}"
    result.stdout.fnmatch_lines(["PASSED dicomqc::dicom-files"])
    if passed:
        result.assert_outcomes(passed=12)
        assert result.ret == 0
        result.stdout.fnmatch_lines(["PASSED dicomqc::rule::original-image"])
        result.stdout.fnmatch_lines([f"dicomqc rule original-image passed: {verdict}"])
    else:
        result.assert_outcomes(passed=11, failed=1)
        assert result.ret == 1
        result.stdout.fnmatch_lines(["_* rule original-image _*", verdict], consecutive=True)  # the failure text
        result.stdout.fnmatch_lines(["FAILED dicomqc::rule::original-image - *"])
        result.stdout.fnmatch_lines(
            [f"dicomqc rule original-image failed: {verdict} (above: dicomqc::rule::original-image)"]
        )
    result.stdout.fnmatch_lines([f"dicomqc rule original-image (error): {derived} warned of 10 applicable files"])
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
    testcase = xml[xml.index('<testcase classname="dicomqc" name="rule::original-image"') :].split("</testcase>")[0]
    assert f'<failure message="{verdict}">' in testcase
    assert '<property name="dicomqc_status" value="failed" />' in testcase
    assert f'<property name="dicomqc_message" value="{verdict}" />' in testcase


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
    result = run("--dicom-dir=data", "-rxX", "-v")  # -v: plugin lines are not cut to the terminal width
    result.assert_outcomes(failed=1, xfailed=2, passed=1)  # passed: dicom-files
    # one line at a time: the short summary lists the files in the order xdist's workers finish them
    result.stdout.fnmatch_lines(["XFAIL data/legacy/a/old.dcm::dicomqc - waived: original-image (legacy-scans)"])
    result.stdout.fnmatch_lines(["XFAIL data/new/calib.dcm::dicomqc - waived: original-image (one-uid)"])
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
    result = run("--dicom-dir=data", "-v")  # -v: plugin lines are not cut to the terminal width
    result.assert_outcomes(failed=1, passed=1)  # passed: dicom-files
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
    result.assert_outcomes(xfailed=1, passed=1)  # passed: dicom-files


def test_non_dicom_globs(run: Runner) -> None:
    rules(run.pytester, "non_dicom:\n  default: fail\n  pass: ['**/*.json']\n  skip: ['docs/**']\nrules: []\n")
    data = run.pytester.path / "data"
    (data / "docs").mkdir(parents=True)
    (data / "labels.json").write_text("{}")
    (data / "docs" / "readme.txt").write_text("hi")
    (data / "notes.txt").write_text("hi")
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=1, skipped=1, failed=2)  # no DICOM file at all: dicom-files fails
    report = run.pytester.path / "metadata_dicom.xlsx"
    statuses = {r["path"]: r["status"] for r in read_sheet(report)}
    assert statuses == {"docs/readme.txt": "skipped", "labels.json": "passed", "notes.txt": "failed"}
    summary = {(r["section"], r["item"]): (r["value"], r["detail"]) for r in read_sheet(report, "Summary")}
    assert summary[("dataset", "dicom-files")] == (
        "failed",
        "0 DICOM files checked in data/: 3 text files; at least 1 required",
    )


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
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
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
    completed = subprocess.run(
        [*command, "--waivers", str(tmp_path / "waivers.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 4
    assert "waivers.yaml:4:12: waiver 'W1': unknown rule id 'original-imag' (did you mean 'original-image'?)" in (
        completed.stderr
    )
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
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
    result = pytester.runpytest("--dicom-dir=data", "-k", "1 or 2", "-p", "no:cacheprovider", "-rA", "-v")
    # two files and both results (dicom-files, rule::original-image) deselected: no threshold verdict
    result.assert_outcomes(passed=2, deselected=4)
    deselected = "not run: deselected (-k, -m, --deselect, --lf)"
    result.stdout.fnmatch_lines(
        [f"dicomqc dicom-files {deselected}", f"dicomqc rule original-image {deselected}"], consecutive=True
    )
    result.stdout.fnmatch_lines(["dicomqc waiver never-used (*) waived nothing in this partial run"])
    assert "(stale)" not in result.stdout.str()
    report = pytester.path / "metadata_dicom.xlsx"
    statuses = {r["id"]: r["status"] for r in read_sheet(report, "Waivers")}
    assert statuses["never-used"] == "unused in this partial run"
    summary = {(r["section"], r["item"]): (r["value"], r["detail"]) for r in read_sheet(report, "Summary")}
    reason = "deselected (-k, -m, --deselect, --lf)"
    assert summary[("threshold", "original-image")] == ("not run", reason)
    assert summary[("dataset", "dicom-files")] == ("not run", reason)
    files = [(r["path"], r["status"], r["checked"]) for r in read_sheet(report)]  # every file, checked or not
    assert files == [
        ("0.dcm", "not run", None),
        ("1.dcm", "passed", "this run"),
        ("2.dcm", "passed", "this run"),
        ("3.dcm", "not run", None),
    ]


PARTLY_WAIVED = """rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
  - id: ct-only
    tag: Modality
    equals: CT
waivers:
  - id: legacy-reformats
    path: "legacy/**"
    rules: [original-image]
    reason: Reformatted legacy series
"""


def test_only_a_file_whose_every_failure_is_waived_is_xfail(run: Runner) -> None:
    """A waiver accepts one finding, not the file: an unwaived failure beside it still fails the file."""
    rules(run.pytester, PARTLY_WAIVED)
    data = run.pytester.path / "data" / "legacy"
    write_dicom(data / "both.dcm", image_type="DERIVED", modality="MR")
    write_dicom(data / "only.dcm", image_type="DERIVED")
    result = run("--dicom-dir=data", "-rfx")
    result.assert_outcomes(failed=1, xfailed=1, passed=1)  # passed: dicom-files
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["ct-only: Modality = MR, expected equal to 'CT'", "waived: original-image (legacy-reformats)"],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(["XFAIL data/legacy/only.dcm::dicomqc - waived: original-image (legacy-reformats)"])
    report = run.pytester.path / "metadata_dicom.xlsx"
    files = {r["path"]: (r["status"], r["failed_rules"], r["original-image"], r["ct-only"]) for r in read_sheet(report)}
    assert files == {
        "legacy/both.dcm": ("failed", "ct-only", "WAIVED", "FAIL"),
        "legacy/only.dcm": ("waived", None, "WAIVED", "PASS"),
    }
    findings = [(r["path"], r["rule"], r["waiver"]) for r in read_sheet(report, "Findings")]
    assert findings == [
        ("legacy/both.dcm", "original-image", "legacy-reformats"),
        ("legacy/both.dcm", "ct-only", None),
        ("legacy/only.dcm", "original-image", "legacy-reformats"),
    ]


def test_waivers_sheet_reads_back_every_column(run: Runner) -> None:
    """Each column of the Waivers sheet, for an active, an expired and a stale waiver from both files."""
    rules(
        run.pytester,
        "rules:\n  - id: original-image\n    tag: ImageType\n    contains: ORIGINAL\n"
        "  - id: ct-only\n    tag: Modality\n    equals: CT\n"
        "waivers:\n"
        "  - id: legacy\n    path: 'legacy/**'\n    rules: [original-image, ct-only]\n"
        f"    reason: Accepted by the data board\n    expires: {NOT_YET_EXPIRED}\n"
        "  - id: old-phantom\n    sop_instance_uid: '1.2.3.4.5'\n    rules: '*'\n"
        f"    reason: Phantom, no longer kept\n    expires: {EXPIRED}\n",
    )
    (run.pytester.path / "waivers.yaml").write_text(
        "version: 1\nwaivers:\n  - id: nothing-here\n    path: 'nowhere/*.dcm'\n    rules: [ct-only]\n"
        "    reason: Old exception\n"
    )
    data = run.pytester.path / "data"
    write_dicom(data / "legacy" / "a.dcm", image_type="DERIVED", modality="MR")
    write_dicom(data / "legacy" / "b.dcm", image_type="DERIVED")
    write_dicom(data / "phantom.dcm", image_type="DERIVED", SOPInstanceUID="1.2.3.4.5")
    result = run("--dicom-dir=data", "--dicom-waivers=waivers.yaml")
    result.assert_outcomes(failed=1, xfailed=2, passed=1)  # passed: dicom-files
    rules_file, waivers_file = run.pytester.path / "rules.yaml", run.pytester.path / "waivers.yaml"
    assert read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Waivers") == [
        {
            "id": "legacy",
            "status": "active",
            "files": 2,
            "path": "legacy/**",
            "sop_instance_uid": None,
            "rules": "original-image,ct-only",
            "reason": "Accepted by the data board",
            "expires": NOT_YET_EXPIRED,
            "defined in": f"{rules_file}:10",
        },
        {
            "id": "old-phantom",
            "status": "expired",
            "files": 0,
            "path": None,
            "sop_instance_uid": "1.2.3.4.5",
            "rules": "*",
            "reason": "Phantom, no longer kept",
            "expires": EXPIRED,
            "defined in": f"{rules_file}:15",
        },
        {
            "id": "nothing-here",
            "status": "stale",
            "files": 0,
            "path": "nowhere/*.dcm",
            "sop_instance_uid": None,
            "rules": "ct-only",
            "reason": "Old exception",
            "expires": None,
            "defined in": f"{waivers_file}:3",
        },
    ]


def test_rules_check_takes_the_run_options_and_reads_no_dataset(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--dicom-rules-check with a run's options checks the files they name, then stops: no file read, no report."""
    # the module as the run uses it: pytester drops the modules a run imported (see test_cache.count_reads)
    session = importlib.import_module("pytest_dicomqc.session")
    reads: list[Path] = []
    monkeypatch.setattr(session, "check", lambda path, *rest: reads.append(path))
    (pytester.path / "qc").mkdir()
    (pytester.path / "qc" / "strict.yaml").write_text(
        "version: 1\nrules:\n  - id: original-image\n    tag: ImageType\n    contains: ORIGINAL\n"
        "    severity: warning\n"
    )
    (pytester.path / "qc" / "waivers.yaml").write_text(
        f"version: 1\nwaivers:\n  - path: 'old/**'\n    rules: [original-image]\n    reason: r\n"
        f"    expires: {EXPIRED}\n"
    )
    write_dicom(pytester.path / "data" / "d.dcm", image_type="DERIVED")
    options = ("--dicom-dir=data", "--dicom-rules=qc/strict.yaml", "--dicom-waivers=qc/waivers.yaml")
    result = pytester.runpytest(*options, "--dicom-rules-check", "-p", "no:cacheprovider")
    assert result.ret == 0
    valid = "valid: 1 rules (1 warning, 0 with max_failing), 0 dataset checks, 1 waivers (1 expired)"
    assert result.outlines == [f"{pytester.path / 'qc' / 'strict.yaml'}: {valid}"]
    assert reads == []
    assert not (pytester.path / "metadata_dicom.xlsx").exists()
    (pytester.path / "qc" / "waivers.yaml").write_text(
        "version: 1\nwaivers:\n  - path: 'old/**'\n    rules: [original-imag]\n    reason: r\n"
    )
    result = pytester.runpytest(*options, "--dicom-rules-check", "-p", "no:cacheprovider")
    assert result.ret == 4
    assert [line for line in result.errlines if line.startswith("ERROR")] == [
        f"ERROR: {pytester.path / 'qc' / 'waivers.yaml'}:4:12: waiver 'W1': unknown rule id 'original-imag'"
        " (did you mean 'original-image'?)"
    ]
    assert reads == []
    assert not (pytester.path / "metadata_dicom.xlsx").exists()


def test_max_failing_rule_in_warnings_column_and_summary_sections(run: Runner) -> None:
    """A file failing a max_failing rule names it under warnings; Summary carries every verdict's message."""
    rules(
        run.pytester,
        THRESHOLD.format(limit="1") + "dataset:\n  - id: unique-uid\n    unique: SOPInstanceUID\n"
        "  - id: unique-series\n    unique: SeriesInstanceUID\n    severity: warning\n",
    )
    data = run.pytester.path / "data"
    write_dicom(data / "a.dcm", image_type="DERIVED", SOPInstanceUID="1.2.3")
    write_dicom(data / "b.dcm", SOPInstanceUID="1.2.3")
    write_dicom(data / "c.dcm", image_type="DERIVED")
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=5, failed=2)  # 3 files, dicom-files, unique-series (a warning)
    report = run.pytester.path / "metadata_dicom.xlsx"
    files = [(r["path"], r["status"], r["failed_rules"], r["warnings"]) for r in read_sheet(report)]
    assert files == [
        ("a.dcm", "passed", None, "original-image"),
        ("b.dcm", "passed", None, None),
        ("c.dcm", "passed", None, "original-image"),
    ]
    verdicts = [(r["section"], r["item"], r["value"], r["detail"]) for r in read_sheet(report, "Summary")]
    assert verdicts[0] == ("verdict", "FAILED", "FAILED: 2 dataset results failed", None)
    assert [v for v in verdicts if v[0] in ("threshold", "dataset")] == [
        ("dataset", "dicom-files", "passed", "3 DICOM files checked in data/; at least 1 required"),
        (
            "dataset",
            "unique-uid",
            "failed",
            "1 problem in 3 files, 2 distinct values: SOPInstanceUID 1.2.3: 2 files have the same value (a.dcm, b.dcm)",
        ),
        (
            "dataset",
            "unique-series",
            "warning",
            "1 problem in 3 files, 1 distinct value: SeriesInstanceUID 1.2.826.0.1.3680043.10.999.2: "
            "3 files have the same value (a.dcm, b.dcm, c.dcm)",
        ),
        (
            "threshold",
            "original-image",
            "failed",
            "2 of 3 applicable files fail rule 'original-image' (66.7%), above max_failing 1",
        ),
    ]
    rule = {r["item"]: (r["value"], r["detail"]) for r in read_sheet(report, "Summary") if r["section"] == "rule"}
    assert rule == {
        "original-image": (
            2,
            "error; applicable 3, passed 1, failed 0, warned 2, waived 0, not applicable 0, not checked 0",
        )
    }


def test_failing_rule_example_stops_a_run(run: Runner) -> None:
    """Examples run whenever the rules load, not only in the linter: a run with a rule that cannot fail stops."""
    rules(
        run.pytester,
        "rules:\n  - id: original-image\n    tag: ImageType\n    contains_any: [ORIGINAL, DERIVED]\n"
        "    examples:\n      pass: [[ORIGINAL, PRIMARY]]\n      fail: [[DERIVED, SECONDARY]]\n",
    )
    write_dicom(run.pytester.path / "data" / "d.dcm")
    result = run("--dicom-dir=data")
    assert result.ret == 4
    assert [line for line in result.errlines if line.startswith("ERROR")] == [
        f"ERROR: {run.pytester.path / 'rules.yaml'}:8:14: rule 'original-image': example ['DERIVED', 'SECONDARY']"
        " passes the rule (listed under fail)"
    ]
    assert not (run.pytester.path / "metadata_dicom.xlsx").exists()
