"""Dataset files run pytest's call phase alone (pytest_dicomqc/protocol.py), and pytest behaves as
with its standard protocol: -x, --maxfail, --lf, --sw, junitxml, output capture, xdist and
pytest-timeout work; a run in which thousands of files fail stays linear (pytest #13360)."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import MODES, SUBPROCESS_TIMEOUT, read_sheet, write_dicom

RULES = "version: 1\nrules:\n  - id: original\n    tag: ImageType\n    contains: ORIGINAL\n"
"""One rule, no dataset check: the only result is ``dicomqc::dicom-files``."""
COUNTING_CONFTEST = """
import pytest
from _pytest.terminal import TerminalReporter

counts = {"reports": 0, "scanned": 0}
_teardown_reports = TerminalReporter._get_teardown_reports


def _counted(self, nodeid):
    # the loop of pytest #13360: every failure scans every passed setup and teardown report
    counts["scanned"] += len(self.getreports(""))
    return _teardown_reports(self, nodeid)


TerminalReporter._get_teardown_reports = _counted


def pytest_runtest_logreport(report):
    counts["reports"] += 1


def pytest_terminal_summary(terminalreporter):
    kept = len(terminalreporter.stats.get("", []))
    terminalreporter.write_line(f"COUNTS reports={counts['reports']} scanned={counts['scanned']} kept={kept}")
"""


def dataset(root: Path, failing: int, passing: int) -> Path:
    """``root/f<i>.dcm`` fail the rule (DERIVED), ``root/p<i>.dcm`` pass it; copies of two files."""
    good = write_dicom(root / "p0.dcm")
    bad = write_dicom(root / "f0.dcm", image_type="DERIVED\\SECONDARY")
    for index in range(1, passing):
        shutil.copyfile(good, root / f"p{index}.dcm")
    for index in range(1, failing):
        shutil.copyfile(bad, root / f"f{index}.dcm")
    if not passing:
        good.unlink()
    return root


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Sorted, the files run ``f0 f1 f2 p0 p1 p2``: three failures first."""
    pytester.makefile(".yaml", rules=RULES)
    dataset(pytester.path / "data", failing=3, passing=3)
    return pytester


def ran(result: pytest.RunResult) -> list[tuple[str, str]]:
    """(file name, outcome) of each dataset file in a ``-v`` run, in the order they ran; with
    xdist, ``[gw0] [ 14%] FAILED data/f0.dcm::dicomqc``."""
    found = re.findall(
        r"^(?:\[gw\d+\] \[ *\d+%\] (\w+) data/(\w+)\.dcm::dicomqc|data/(\w+)\.dcm::dicomqc (\w+))",
        result.stdout.str(),
        flags=re.MULTILINE,
    )
    return [(name or name_, outcome or outcome_) for outcome, name, name_, outcome_ in found]


@pytest.mark.parametrize("mode", ["plain", "no-xdist"])
def test_exitfirst_stops_at_the_first_failing_file(project: pytest.Pytester, mode: str) -> None:
    result = project.runpytest(*MODES[mode], "-p", "no:cacheprovider", "-v", "--dicom-dir=data", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert ran(result) == [("f0", "FAILED")]
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    rows = {row["path"]: row["status"] for row in read_sheet(project.path / "metadata_dicom.xlsx")}
    assert rows == {"f0.dcm": "failed", **{f"{n}.dcm": "not run" for n in ("f1", "f2", "p0", "p1", "p2")}}


@pytest.mark.parametrize("mode", ["plain", "no-xdist"])
def test_maxfail_stops_after_that_many_failing_files(project: pytest.Pytester, mode: str) -> None:
    result = project.runpytest(*MODES[mode], "-p", "no:cacheprovider", "-v", "--dicom-dir=data", "--maxfail=2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert ran(result) == [("f0", "FAILED"), ("f1", "FAILED")]


def test_maxfail_under_xdist_stops_the_run(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--dicom-dir=data", "--maxfail=1", timeout=SUBPROCESS_TIMEOUT
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*stopping after * failures*"])
    assert "dicomqc::dicom-files" not in result.stdout.str()  # no result judged over a stopped run


@pytest.mark.parametrize("mode", list(MODES))
def test_last_failed_reruns_exactly_the_failing_files(project: pytest.Pytester, mode: str) -> None:
    def run(*args: str) -> pytest.RunResult:
        return project.runpytest_subprocess(*MODES[mode], "-v", "--dicom-dir=data", *args, timeout=SUBPROCESS_TIMEOUT)

    first = run()
    first.assert_outcomes(passed=4, failed=3)  # six files and dicomqc::dicom-files
    again = run("--lf")
    assert sorted(ran(again)) == [("f0", "FAILED"), ("f1", "FAILED"), ("f2", "FAILED")]
    if mode != "xdist":  # with xdist, the workers select and say it
        again.stdout.fnmatch_lines(["*run-last-failure: rerun previous 3 failures*"])
    write_dicom(project.path / "data" / "f1.dcm")  # fixed: --lf forgets it after it passes
    run("--lf")
    last = run("--lf")
    assert sorted(ran(last)) == [("f0", "FAILED"), ("f2", "FAILED")]


@pytest.mark.parametrize("mode", ["plain", "no-xdist"])
def test_stepwise_stops_at_a_failing_file_and_resumes_from_it(project: pytest.Pytester, mode: str) -> None:
    def run() -> pytest.RunResult:
        return project.runpytest(*MODES[mode], "-v", "--dicom-dir=data", "--sw")

    assert ran(run()) == [("f0", "FAILED")]
    write_dicom(project.path / "data" / "f0.dcm")
    second = run()
    assert ran(second) == [("f0", "PASSED"), ("f1", "FAILED")]
    write_dicom(project.path / "data" / "f1.dcm")
    third = run()
    assert ran(third) == [("f1", "PASSED"), ("f2", "FAILED")]
    third.stdout.fnmatch_lines(["*stepwise: skipping 1 already passed items*"])


CALL_HOOK_CONFTEST = """
import logging

def pytest_runtest_call(item):
    print(f"printed by conftest for {item.nodeid}")
    logging.getLogger("conftest").warning(f"logged by conftest for {item.nodeid}")
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_output_of_a_conftest_hook_is_captured_per_file(project: pytest.Pytester, mode: str) -> None:
    project.makeconftest(CALL_HOOK_CONFTEST)
    result = project.runpytest_subprocess(
        *MODES[mode], "-p", "no:cacheprovider", "--dicom-dir=data", "-rA", timeout=SUBPROCESS_TIMEOUT
    )
    result.assert_outcomes(passed=4, failed=3)
    # each file's own output under its own failure or pass, once: not printed while running
    result.stdout.fnmatch_lines(
        [
            "*_ dicomqc: f0.dcm _*",
            "original: ImageType = DERIVED\\SECONDARY, expected to contain 'ORIGINAL'",
            "*- Captured stdout call -*",
            "printed by conftest for data/f0.dcm::dicomqc",
            "*- Captured log call -*",
            "WARNING *logged by conftest for data/f0.dcm::dicomqc*",
        ]
    )
    result.stdout.fnmatch_lines(["*_ dicomqc: p2.dcm _*", "*- Captured stdout call -*", "printed by *data/p2.dcm*"])
    assert result.stdout.str().count("printed by conftest for data/p2.dcm::dicomqc") == 1


def junit_cases(path: Path) -> dict[str | None, ET.Element]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    cases = list(suite.iter("testcase"))
    assert len({case.get("name") for case in cases}) == len(cases), "a test case written twice"
    return {case.get("name"): case for case in cases}


@pytest.mark.parametrize("mode", list(MODES))
def test_junitxml_has_one_closed_case_per_file_with_its_output(project: pytest.Pytester, mode: str) -> None:
    project.makeconftest(CALL_HOOK_CONFTEST)
    project.makeini("[pytest]\njunit_logging = system-out\njunit_log_passing_tests = true\n")
    result = project.runpytest_subprocess(
        *MODES[mode], "-p", "no:cacheprovider", "--dicom-dir=data", "--junitxml=out.xml", timeout=SUBPROCESS_TIMEOUT
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = junit_cases(project.path / "out.xml")
    files = [f"{n}.dcm" for n in ("f0", "f1", "f2", "p0", "p1", "p2")]
    assert sorted(cases) == ["dicom-files", *files]  # in the order they ran, which xdist may change
    assert list(cases)[-1] == "dicom-files"
    for name in files:
        case = cases[name]
        assert [child.tag for child in case] == (["failure", "system-out"] if name[0] == "f" else ["system-out"])
        out = case.find("system-out")
        assert out is not None and out.text is not None
        assert re.findall("printed by .*", out.text) == [f"printed by conftest for data/{name}::dicomqc"]
    failure = cases["f0.dcm"].find("failure")
    assert failure is not None
    assert failure.get("message") == "original: ImageType = DERIVED\\SECONDARY, expected to contain 'ORIGINAL'"
    properties = {p.get("name"): p.get("value") for p in cases["dicom-files"].iter("property")}
    assert properties == {
        "dicomqc_status": "passed",
        "dicomqc_message": "6 DICOM files checked in data/; at least 1 required",
    }


@pytest.mark.parametrize("mode", ["plain", "xdist"])
def test_pytest_timeout_fails_a_file_that_takes_too_long(project: pytest.Pytester, mode: str) -> None:
    pytest.importorskip("pytest_timeout")
    project.makeconftest(
        "import time\n\ndef pytest_runtest_call(item):\n    if item.nodeid == 'data/p1.dcm::dicomqc':\n"
        "        time.sleep(60)\n"
    )
    result = project.runpytest_subprocess(
        *MODES[mode], "-p", "no:cacheprovider", "-v", "--dicom-dir=data", "--timeout=2", timeout=SUBPROCESS_TIMEOUT
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert ("p1", "FAILED") in ran(result)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>2.0s) from pytest-timeout.*"])
    rows = {row["path"]: row["status"] for row in read_sheet(project.path / "metadata_dicom.xlsx")}
    assert rows["p1.dcm"] == "failed"
    assert rows["p2.dcm"] == "passed"


SKIP_AND_REORDER_CONFTEST = """
import pytest

@pytest.fixture(scope="module")
def resource():
    yield "ready"

def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid == "data/train/p0.dcm::dicomqc":
            item.add_marker(pytest.mark.skip(reason="skipped by the conftest"))
    # a test of data/ before the files, one of the root after them: the last file runs pytest's
    # standard protocol, which tears down data/'s collector (set up for test_near.py, kept for the
    # files, which are in data/ too) before test_model.py's test
    items.sort(key=lambda item: (not item.nodeid.startswith("data/test_near"), item.nodeid.startswith("test_model")))
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_standard_protocol_where_setup_or_teardown_matter(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makefile(".yaml", rules=RULES)
    dataset(pytester.path / "data" / "train", failing=3, passing=3)
    pytester.makeconftest(SKIP_AND_REORDER_CONFTEST)
    test = "def test_{}(resource):\n    assert resource == 'ready'\n"
    pytester.makepyfile(test_model=test.format("model"), **{"data/test_near": test.format("near")})
    result = pytester.runpytest_subprocess(
        *MODES[mode], "-p", "no:cacheprovider", "-v", "-rs", "--dicom-dir=data/train", "data",
        "test_model.py", "--junitxml=out.xml", timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    result.assert_outcomes(passed=4, failed=3, skipped=2)  # with a file not run, no dataset result is judged
    result.stdout.fnmatch_lines(["SKIPPED [1] data/train/p0.dcm: skipped by the conftest"])
    cases = list(junit_cases(pytester.path / "out.xml"))
    files = [f"{n}.dcm" for n in ["f0", "f1", "f2", "p0", "p1", "p2"]]
    assert sorted(cases) == sorted(["dicom-files", "test_model", "test_near", *files])


@pytest.mark.parametrize("mode", list(MODES))
def test_thousand_failing_files_keep_no_setup_or_teardown_reports(pytester: pytest.Pytester, mode: str) -> None:
    """pytest #13360: without this plugin's protocol, ``scanned`` is failures x 2 x files."""
    pytester.makefile(".yaml", rules=RULES)
    pytester.makeconftest(COUNTING_CONFTEST)
    dataset(pytester.path / "data", failing=1000, passing=200)
    result = pytester.runpytest_subprocess(
        *MODES[mode], "-p", "no:cacheprovider", "--dicom-dir=data", timeout=SUBPROCESS_TIMEOUT
    )
    result.assert_outcomes(passed=201, failed=1000)
    result.stdout.fnmatch_lines(["COUNTS reports=1201 scanned=0 kept=0"])  # one report per file and result


def test_five_thousand_failing_files_stay_linear(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", rules=RULES)
    pytester.makeconftest(COUNTING_CONFTEST)
    dataset(pytester.path / "data", failing=5000, passing=0)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dicom-dir=data", timeout=SUBPROCESS_TIMEOUT)
    result.assert_outcomes(passed=1, failed=5000)  # dicomqc::dicom-files passes
    result.stdout.fnmatch_lines(["COUNTS reports=5001 scanned=0 kept=0"])


SKIPIF_FALSE_CONFTEST = """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid in ("data/a/x.dcm::dicomqc", "data/b/y.dcm::dicomqc"):
            item.add_marker(pytest.mark.skipif(False, reason="not skipped"))
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_files_set_up_by_the_standard_protocol_in_two_folders(pytester: pytest.Pytester, mode: str) -> None:
    """``a/x`` is set up (its skipif is false) and leaves folder ``a`` set up for ``a/z``; ``b/y``
    is set up next, in another folder: ``a`` must have been torn down before it."""
    pytester.makefile(".yaml", rules=RULES)
    pytester.makeconftest(SKIPIF_FALSE_CONFTEST)
    for name in ("a/x", "a/z", "b/w", "b/y"):
        write_dicom(pytester.path / "data" / f"{name}.dcm")
    result = pytester.runpytest_subprocess(
        *MODES[mode], "-p", "no:cacheprovider", "--dicom-dir=data", timeout=SUBPROCESS_TIMEOUT
    )
    result.assert_outcomes(passed=5)  # four files and dicomqc::dicom-files, no error
