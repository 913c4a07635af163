"""Reading ahead in other processes: the same records as reading in the loop, and a crash names its file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_dicomqc import readahead
from pytest_dicomqc.cache import stat_of
from pytest_dicomqc.pipeline import check_file, wanted_tags
from pytest_dicomqc.readahead import CheckOptions, Job, ReadAhead
from pytest_dicomqc.rules.load import load_rules
from tests.helpers import read_sheet, write_dicom

RULES = load_rules(Path(__file__).parent.parent / "rules.yaml")
OPTIONS = CheckOptions(RULES, wanted_tags(RULES), strict=False)


def crash_on_boom(jobs: list[tuple[str, str]]) -> list[readahead.Read]:
    """A reader that dies like a decoder calling abort() when it meets boom.dcm."""
    if any(path.endswith("boom.dcm") for path, _ in jobs):
        os._exit(134)
    return readahead.check_chunk(jobs)


def dataset(root: Path, count: int) -> list[Job]:
    for index in range(count):
        write_dicom(root / f"{index:03d}.dcm", image_type="DERIVED" if index % 7 == 0 else "ORIGINAL")
    (root / "notes.txt").write_text("not dicom")
    return [Job(path, path.name) for path in sorted(root.iterdir())]


def test_records_equal_reading_in_the_loop(tmp_path: Path) -> None:
    jobs = dataset(tmp_path, 50)
    ahead = ReadAhead(jobs, OPTIONS, workers=2)
    try:
        reads = [ahead.record(job.path) for job in jobs]
    finally:
        ahead.close()
    assert [read[0] for read in reads if read] == [
        check_file(job.path, job.relpath, RULES, OPTIONS.tags) for job in jobs
    ]
    assert [read[1] for read in reads if read] == [stat_of(job.path) for job in jobs]  # taken before each read
    assert ahead.record(tmp_path / "not-a-job.dcm") is None


def test_a_crashing_file_is_named_and_the_rest_is_read(tmp_path: Path) -> None:
    jobs = dataset(tmp_path, 40)
    write_dicom(tmp_path / "boom.dcm")
    jobs.insert(20, Job(tmp_path / "boom.dcm", "boom.dcm"))
    ahead = ReadAhead(jobs, OPTIONS, workers=2, check=crash_on_boom)
    try:
        reads = {job.relpath: ahead.record(job.path) for job in jobs}
    finally:
        ahead.close()
    records = {path: read[0] for path, read in reads.items() if read}
    boom = records.pop("boom.dcm")
    assert (boom.kind, boom.verdict) == ("unreadable", "failed")
    assert boom.error == "reading this file killed the reading process (a decoder crashed on it)"
    assert all(record is not None and record.kind in ("dicom", "non-dicom") for record in records.values())


@pytest.mark.parametrize("workers", ["0", "2"])
def test_plugin_report_is_the_same_with_and_without_readers(pytester: pytest.Pytester, workers: str) -> None:
    dataset(pytester.path / "data", 30)
    result = pytester.runpytest_subprocess("--dicom-dir=data", f"--dicom-workers={workers}", "-p", "no:cacheprovider")
    assert result.ret == 1
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx")
    assert [(r["path"], r["status"]) for r in rows][:3] == [
        ("000.dcm", "failed"),
        ("001.dcm", "passed"),
        ("002.dcm", "passed"),
    ]
    assert len(rows) == 31


def test_bad_workers_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "data").mkdir()
    result = pytester.runpytest("--dicom-dir=data", "--dicom-workers=many")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --dicom-workers: expected 'auto' or a number of processes >= 0, not 'many'"])


def test_sigterm_writes_the_report_and_leaves_no_process(pytester: pytest.Pytester) -> None:
    """A CI timeout sends SIGTERM: the session still ends cleanly and the readers exit."""
    import signal
    import subprocess
    import sys
    import time

    dataset(pytester.path / "data", 80)
    pytester.makeconftest(
        """
        import time
        def pytest_runtest_call(item):
            if item.path.name == "040.dcm":
                print("READY", flush=True)
                time.sleep(600)
        """
    )
    command = [sys.executable, "-m", "pytest", "--dicom-dir=data", "--dicom-workers=2", "-p", "no:cacheprovider", "-s"]
    process = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "READY" in line:
            break
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 2, output[-2000:]
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx")
    assert len(rows) == 81
    assert {r["path"]: r["status"] for r in rows}["079.dcm"] == "not run"
    deadline = time.monotonic() + 60
    while any(os.path.exists(f"/proc/{pid}") for pid in children) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [pid for pid in children if os.path.exists(f"/proc/{pid}")] == []


def test_script_calling_pytest_main_unguarded_runs_once(pytester: pytest.Pytester) -> None:
    """multiprocessing runs the main script again in each new process; without care, a script
    with a top-level ``pytest.main()`` started a whole session in every reading process."""
    for index in range(40):
        write_dicom(pytester.path / "data" / f"{index:02d}.dcm", pixels=np.full((4, 4), index, dtype=np.int16))
    script = pytester.path / "run_qc.py"
    script.write_text(
        "import sys, pytest\n"
        "print('session start')\n"
        "sys.exit(pytest.main(['--dicom-dir=data', '--dicom-workers=2', '-p', 'no:cacheprovider', '-q']))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=pytester.path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("session start") == 1
    assert "40 passed" in done.stdout
    assert len(read_sheet(pytester.path / "metadata_dicom.xlsx", "Files")) == 40
