"""Runs that stop early (``-x``) or lose a worker: the results over the dataset (``dicom-files``
and the dataset checks) need every file, so they are not judged, and every file still has its row.
A stopped run reports no result at all (``not run`` in the Summary and Dataset sheets); a run that
lost a file reports each result as skipped, ``not judged``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import Runner, read_sheet, write_dicom

RULES = """\
version: 1
rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
dataset:
  - id: unique-sop
    unique: SOPInstanceUID
  - id: unique-pixels
    unique_pixels: true
"""
FILES = ["a-derived.dcm", *(f"f{index:02d}.dcm" for index in range(19))]
RESULTS = {"dicom-files": "dicom-files", "unique-sop": "dataset unique-sop", "unique-pixels": "dataset unique-pixels"}
"""The results over the dataset in report order (``min_dicom_files`` first), as the terminal names them."""
STOPPED = "the session stopped early (-x, --maxfail, Ctrl-C)"
NOT_JUDGED = "1 file of the dataset not checked in this run nor in the cache"
# Every file but the failing first one waits until the controller (the one pytest process, or
# xdist's controller, which decides to stop) has seen that failure: xdist then stops handing out
# files, so -x leaves files not run, whatever the timing. One deadline for the whole run bounds
# the wait should the file stop failing (a regression): the test then fails, it does not stall.
AFTER_THE_FAILURE = """
import os, time

MARKER = os.path.join({root!r}, "failure-seen")
DEADLINE = time.monotonic() + 30

def pytest_runtest_logreport(report):
    if report.failed and "a-derived" in report.nodeid and "PYTEST_XDIST_WORKER" not in os.environ:
        open(MARKER, "w").close()

def pytest_runtest_call(item):
    if item.path.name != "a-derived.dcm":
        while not os.path.exists(MARKER) and time.monotonic() < DEADLINE:
            time.sleep(0.01)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """20 files, the first of which fails a rule; distinct SOP instances and pixels: the checks pass when judged."""
    (pytester.path / "rules.yaml").write_text(RULES)
    for index, name in enumerate(FILES):
        image_type = "DERIVED\\SECONDARY" if name == "a-derived.dcm" else "ORIGINAL\\PRIMARY"
        write_dicom(pytester.path / "data" / name, image_type=image_type, pixels=np.full((4, 4), index, np.int16))
    return pytester


def dataset_sheet(pytester: pytest.Pytester) -> list[tuple[str, str, str]]:
    return [
        (r["check"], r["status"], r["checked"]) for r in read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset")
    ]


def summary_dataset_rows(pytester: pytest.Pytester) -> list[tuple[str, str]]:
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx", "Summary")
    return [(r["item"], r["value"]) for r in rows if r["section"] == "dataset"]


def assert_not_judged(result: pytest.RunResult, pytester: pytest.Pytester, status: str, message: str) -> None:
    """No result over the dataset passed or failed: each says, in the terminal's section and in
    both sheets, that and why it was not judged. (The terminal cuts its lines to 80 columns: the
    reason is matched by its start.)"""
    output = result.stdout.str()
    assert "PASSED dicomqc::" not in output, output[-3000:]
    assert "FAILED dicomqc::" not in output
    reason = message[:21]  # "the session stopped e", "1 file of the dataset"
    result.stdout.fnmatch_lines([f"dicomqc {shown} {status}: *{reason}*" for shown in RESULTS.values()])
    assert dataset_sheet(pytester) == [(name, status, message) for name in RESULTS]
    assert summary_dataset_rows(pytester) == [(name, status) for name in RESULTS]


def test_a_complete_run_judges_the_dataset(run: Runner, project: pytest.Pytester) -> None:
    """The control for the tests below: with every file read, both checks are results of their own."""
    result = run("--dicom-dir=data", "-rA")
    assert result.ret == 1
    result.assert_outcomes(failed=1, passed=22)
    result.stdout.fnmatch_lines(
        ["PASSED dicomqc::dicom-files", "PASSED dicomqc::dataset::unique-sop", "PASSED dicomqc::dataset::unique-pixels"]
    )
    assert "not judged" not in result.stdout.str()
    assert "not run" not in result.stdout.str()
    assert dataset_sheet(project) == [
        ("dicom-files", "passed", "20 DICOM files checked in data/; at least 1 required"),
        ("unique-sop", "passed", "20 files, 20 distinct values"),
        ("unique-pixels", "passed", "20 files, 20 distinct images"),
    ]
    assert summary_dataset_rows(project) == [(name, "passed") for name in RESULTS]


def test_exitfirst_leaves_the_dataset_unjudged(run: Runner, project: pytest.Pytester) -> None:
    project.makeconftest(AFTER_THE_FAILURE.format(root=str(project.path)))
    result = run("--dicom-dir=data", "-x", "-rA")
    assert result.ret == (2 if run.mode == "xdist" else 1)  # xdist stops early by interrupting its workers
    assert_not_judged(result, project, "not run", STOPPED)
    statuses = {r["path"]: r["status"] for r in read_sheet(project.path / "metadata_dicom.xlsx")}
    assert list(statuses) == FILES
    assert statuses["a-derived.dcm"] == "failed"
    if run.mode == "xdist":  # the workers may finish the files they hold; the rest was never handed out
        assert all(status in ("passed", "not run") for path, status in statuses.items() if path != "a-derived.dcm")
        # xdist hands 20 files to 2 workers a few at a time, and no more after the stop
        assert list(statuses.values()).count("not run") >= 10
    else:
        assert set(list(statuses.values())[1:]) == {"not run"}
        result.assert_outcomes(failed=1)


def test_a_crashed_worker_leaves_the_dataset_unjudged(project: pytest.Pytester) -> None:
    """Every other file is read (xdist replaces the worker), yet one has no record: the checks cannot be judged."""
    project.makeconftest(
        """
        import os
        def pytest_runtest_call(item):
            if item.path.name == "f07.dcm":
                os._exit(1)
        """
    )
    result = Runner(project, "xdist")("--dicom-dir=data", "-rA")
    assert result.ret == 1
    result.assert_outcomes(passed=18, failed=2, skipped=3)  # the crash is a failure; the 3 results are skipped
    result.stdout.fnmatch_lines([f"SKIPPED [3] dicomqc: not judged: {NOT_JUDGED}"])
    assert_not_judged(result, project, "not judged", NOT_JUDGED)
    statuses = {r["path"]: r["status"] for r in read_sheet(project.path / "metadata_dicom.xlsx")}
    assert statuses == {name: "failed" if name == "a-derived.dcm" else "passed" for name in FILES} | {
        "f07.dcm": "crashed"
    }
    result.stdout.fnmatch_lines(["dicomqc: 20 files: 18 passed, 1 failed, 1 crashed"])
