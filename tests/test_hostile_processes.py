"""No file can hold the run, and no process outlives it: time limits, signals and killed runs.

Slow files are simulated by a ``sitecustomize`` module in the test folder, which every Python
process of the run imports at start (pytest, its xdist workers and its reading processes: they
all inherit ``PYTHONPATH`` from pytester). It wraps ``check_file`` for two file names:

- ``python-hang.dcm`` sleeps in Python: the alarm of ``--dicom-file-timeout`` ends it anywhere;
- ``c-hang.dcm`` ignores the alarm's signal and then runs a regular expression that backtracks
  for ages in C, holding the interpreter lock: nothing in Python can stop it, as with a decoder
  looping in C. Only the kernel's processor-time limit ends it (reading processes, xdist workers).

Every run has a time bound (``timeout=``) and a bound on the memory of the processes it starts.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pytest_dicomqc.deadline import time_limit, timed_out_error
from pytest_dicomqc.reporter import NOT_REACHED
from tests.helpers import read_sheet, write_dicom
from tests.processes import group_members, started, wait_until_gone

SLOW_FILES = """
import re
import signal
import time
from pathlib import Path

from pytest_dicomqc import pipeline

_real = pipeline.check_file


def check_file(path, *rest, **options):
    if Path(path).name == "python-hang.dcm":
        print("HANG", flush=True)
        time.sleep(3600)
    if Path(path).name == "blocked.dcm":
        print("HANG", flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # a thread stuck where no signal reaches
        time.sleep(3600)
    if Path(path).name == "three-seconds.dcm":
        time.sleep(3)
    if Path(path).name == "c-hang.dcm":
        print("HANG", flush=True)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the file's alarm goes unheard
        re.match(r"(a+)+$", "a" * 64 + "!")
    return _real(path, *rest, **options)


pipeline.check_file = check_file
"""
MEMORY_BOUND = 1_500_000  # kB of the largest process a run started: a run is a few hundred MB
RUN_BOUND = 240  # seconds: a timeout is 1 s, a file stopped by the kernel takes 2 x (1 + 2) s


@pytest.fixture
def slow_dataset(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "sitecustomize.py").write_text(SLOW_FILES)
    for index in range(2):
        write_dicom(pytester.path / "data" / f"{index:02d}.dcm", pixels=np.full((4, 4), index, dtype=np.int16))
    return pytester


def statuses(pytester: pytest.Pytester) -> dict[str, tuple[str, str | None]]:
    return {row["path"]: (row["status"], row["error"]) for row in read_sheet(pytester.path / "metadata_dicom.xlsx")}


def with_slow_files(pytester: pytest.Pytester) -> dict[str, str]:
    """The environment of a run started by hand that imports the test folder's ``sitecustomize``."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(pytester.path), os.environ.get("PYTHONPATH")])),
    }


def assert_memory_bounded() -> None:
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < MEMORY_BOUND


@pytest.mark.parametrize(
    "mode",
    [
        ("--dicom-workers=0",),
        ("--dicom-workers=0", "-p", "no:xdist"),
        ("--dicom-workers=2",),
        ("-n", "2"),
    ],
    ids=["plain", "no-xdist", "readers", "xdist"],
)
def test_a_file_slow_in_python_times_out_and_the_run_goes_on(
    slow_dataset: pytest.Pytester, mode: tuple[str, ...]
) -> None:
    write_dicom(slow_dataset.path / "data" / "python-hang.dcm")
    result = slow_dataset.runpytest_subprocess(
        "--dicom-dir=data", "--dicom-file-timeout=1", "-p", "no:cacheprovider", *mode, timeout=RUN_BOUND
    )
    assert result.ret == 1
    result.assert_outcomes(passed=5, failed=1, skipped=1)  # 2 files, 4 dataset results: no split folder to compare
    rows = statuses(slow_dataset)
    assert rows.pop("python-hang.dcm") == ("failed", "timed out after 1 s (--dicom-file-timeout)")
    assert set(rows.values()) == {("passed", None)}
    result.stdout.fnmatch_lines(["FAILED data/python-hang.dcm::dicomqc - unreadable: timed out after 1 s*"])
    assert_memory_bounded()


@pytest.mark.parametrize("name", ["c-hang.dcm", "blocked.dcm"], ids=["in-c", "idle"])
def test_a_file_stuck_in_a_reading_process_times_out(slow_dataset: pytest.Pytester, name: str) -> None:
    """The alarm cannot end either. Stuck in C, the kernel ends its reading process (processor
    time); stuck idle, the wait for its chunk has a bound and then the readers are killed. Either
    way the pool is rebuilt, the chunk's files are read one by one, the file is named as timed out."""
    write_dicom(slow_dataset.path / "data" / name)
    result = slow_dataset.runpytest_subprocess(
        "--dicom-dir=data", "--dicom-file-timeout=1", "--dicom-workers=2", "-p", "no:cacheprovider", timeout=RUN_BOUND
    )
    assert result.ret == 1
    rows = statuses(slow_dataset)
    assert rows.pop(name) == ("failed", timed_out_error(1))
    assert set(rows.values()) == {("passed", None)}
    assert_memory_bounded()


@pytest.mark.parametrize("mode", [("--dicom-workers=0",), ("--dicom-workers=2",)], ids=["plain", "readers"])
def test_a_timed_out_file_is_not_cached(slow_dataset: pytest.Pytester, mode: tuple[str, ...]) -> None:
    """A timeout says as much about the machine's load as about the file: the next run reads it again."""
    write_dicom(slow_dataset.path / "data" / "three-seconds.dcm")
    first = slow_dataset.runpytest_subprocess("--dicom-dir=data", "--dicom-file-timeout=1", *mode, timeout=RUN_BOUND)
    assert first.ret == 1
    assert statuses(slow_dataset)["three-seconds.dcm"] == ("failed", timed_out_error(1))
    second = slow_dataset.runpytest_subprocess("--dicom-dir=data", "--dicom-file-timeout=30", *mode, timeout=RUN_BOUND)
    assert second.ret == 0, second.stdout.str()[-2000:]
    assert set(statuses(slow_dataset).values()) == {("passed", None)}


def test_a_file_stuck_in_c_in_an_xdist_worker_crashes_only_that_worker(slow_dataset: pytest.Pytester) -> None:
    write_dicom(slow_dataset.path / "data" / "c-hang.dcm")
    result = slow_dataset.runpytest_subprocess(
        "--dicom-dir=data", "--dicom-file-timeout=1", "-n", "2", "-p", "no:cacheprovider", timeout=RUN_BOUND
    )
    assert result.ret == 1
    rows = statuses(slow_dataset)
    status, error = rows.pop("c-hang.dcm")
    assert status == "crashed"
    assert error is not None and "crashed" in error
    assert set(rows.values()) == {("passed", None)}
    assert_memory_bounded()


def test_no_time_limit_with_zero() -> None:
    """``--dicom-file-timeout=0`` sets no alarm."""
    with time_limit(0):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with time_limit(30):
        assert 29 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_readers_die_with_pytest_even_busy_in_c(pytester: pytest.Pytester) -> None:
    """SIGKILL gives pytest no chance to stop its readers: the kernel ends them (parent-death
    signal), although the one stuck in C never lets a Python thread run."""
    (pytester.path / "sitecustomize.py").write_text(SLOW_FILES)
    for index in range(80):
        write_dicom(pytester.path / "data" / f"{index:02d}.dcm")
    write_dicom(pytester.path / "data" / "00-first" / "c-hang.dcm")
    command = [sys.executable, "-m", "pytest", "--dicom-dir=data", "--dicom-workers=2", "-p", "no:cacheprovider", "-s"]
    with started(command, pytester.path, env=with_slow_files(pytester)) as (process, output):
        assert output.wait_for("HANG", timeout=120), output.text(timeout=0)[-3000:]
        readers = [pid for pid in group_members(process.pid) if pid != process.pid]
        assert readers, "no reading process"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        killed = time.monotonic()
        left = wait_until_gone(readers, timeout=30)
        outlived = time.monotonic() - killed
    assert left == [], f"still alive {outlived:.1f} s after pytest was killed: {left}"


def test_sigterm_ends_a_run_waiting_for_a_reader_stuck_in_c(pytester: pytest.Pytester) -> None:
    """A CI timeout's SIGTERM while pytest waits for a file its reader cannot finish: the run
    ends (exit 2) with the report written and no process left, without waiting for the file."""
    (pytester.path / "sitecustomize.py").write_text(SLOW_FILES)
    for index in range(80):
        write_dicom(pytester.path / "data" / f"{index:02d}.dcm")
    write_dicom(pytester.path / "data" / "00-first" / "c-hang.dcm")
    command = [sys.executable, "-m", "pytest", "--dicom-dir=data", "--dicom-workers=2", "-p", "no:cacheprovider", "-s"]
    command += ["--dicom-file-timeout=0"]  # nothing but the signal ends the stuck reader
    with started(command, pytester.path, env=with_slow_files(pytester)) as (process, output):
        assert output.wait_for("HANG", timeout=120), output.text(timeout=0)[-3000:]
        group = group_members(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("pytest did not end within 60 s of SIGTERM:\n" + output.text(timeout=0)[-3000:])
        text = output.text()
        assert returncode == 2, text[-3000:]
        assert wait_until_gone(group) == []
    assert "Traceback" not in text
    rows = statuses(pytester)
    assert len(rows) == 81
    assert rows["00-first/c-hang.dcm"] == ("not run", NOT_REACHED)


INTERRUPT_THE_WRITE = """
import os
import signal

from pytest_dicomqc.writers.stream import ReportStream

_real = ReportStream.finish


def finish(*args, **kwargs):
    os.kill(os.getpid(), signal.{signal})  # arrives while the report is being written
    return _real(*args, **kwargs)


ReportStream.finish = finish
"""


@pytest.mark.parametrize(
    ("signal_name", "mode"),
    [("SIGTERM", ()), ("SIGTERM", ("-p", "no:xdist")), ("SIGTERM", ("-n", "2")), ("SIGINT", ())],
    ids=["plain", "no-xdist", "xdist", "ctrl-c"],
)
def test_a_signal_during_the_report_write_lets_it_finish_then_exits_2(
    pytester: pytest.Pytester, signal_name: str, mode: tuple[str, ...]
) -> None:
    for index in range(5):
        write_dicom(pytester.path / "data" / f"{index}.dcm", pixels=np.full((4, 4), index, dtype=np.int16))
    report = pytester.path / "metadata_dicom.xlsx"
    report.write_text("the previous run's report")
    (pytester.path / "sitecustomize.py").write_text(INTERRUPT_THE_WRITE.replace("{signal}", signal_name))
    result = pytester.runpytest_subprocess("--dicom-dir=data", "-p", "no:cacheprovider", *mode, timeout=RUN_BOUND)
    assert result.ret == 2
    assert [row["status"] for row in read_sheet(report)] == ["passed"] * 5
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "KeyboardInterrupt" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            f"dicomqc report: {report}",
            f"dicomqc: {signal_name} while writing the report: written whole, run stopped",
        ]
    )
    assert_memory_bounded()
