"""Reading ahead in other processes: the same records as reading in the loop, and a crash names its file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_dicomqc import readahead
from pytest_dicomqc.cache import stat_of
from pytest_dicomqc.pipeline import CheckOptions, check_file, wanted_tags
from pytest_dicomqc.readahead import CHUNK, Job, ReadAhead
from pytest_dicomqc.rules.load import load_rules
from tests.helpers import read_sheet, write_dicom
from tests.processes import group_members, started, wait_until_gone

RULES = load_rules(Path(__file__).parent.parent / "rules.yaml")
OPTIONS = CheckOptions(RULES, wanted_tags(RULES), strict=False)
CRASHED = "reading this file killed the reading process (a decoder crashed on it)"


def crash_on_boom(jobs: list[readahead.Task]) -> list[readahead.Read]:
    """A reader that dies like a decoder calling abort() when it meets boom.dcm."""
    if any(path.endswith("boom.dcm") for path, *_ in jobs):
        os._exit(134)
    return readahead.check_chunk(jobs)


_BEFORE_THE_CRASH: list[bool] = []
"""In a reading process: whether its first chunk came before boom.dcm killed a reader."""


def crash_before_anything_is_read(jobs: list[readahead.Task]) -> list[readahead.Read]:
    """Like :func:`crash_on_boom`, but the readers of the first pool read nothing: every chunk in
    flight is lost with that pool, whatever the scheduling (they wait until the broken pool ends
    them). Each call that reads leaves a note of its files in ``calls/``."""
    folder = Path(jobs[0][0]).parent
    if not _BEFORE_THE_CRASH:
        _BEFORE_THE_CRASH.append(not (folder / "crashed").exists())
    if any(path.endswith("boom.dcm") for path, *_ in jobs):
        (folder / "crashed").touch()
        os._exit(134)
    deadline = time.monotonic() + 60
    while _BEFORE_THE_CRASH[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix="note-", delete=False) as note:
        note.write("\n".join(relpath for _, relpath, _ in jobs))
    os.rename(note.name, folder / "calls" / Path(note.name).name)  # whole notes only, even if killed
    return readahead.check_chunk(jobs)


def dataset(root: Path, count: int) -> list[Job]:
    for index in range(count):
        write_dicom(root / f"{index:03d}.dcm", image_type="DERIVED" if index % 7 == 0 else "ORIGINAL")
    (root / "notes.txt").write_text("not dicom")
    return [Job(path, path.name, stat_of(path)) for path in sorted(root.iterdir())]


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
    assert [read[1] for read in reads if read] == [job.state for job in jobs]  # the controller's, carried through
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


def test_chunks_in_flight_when_a_reader_dies_are_read_again(tmp_path: Path) -> None:
    """The pool breaks for every chunk in flight, not only for the one that killed it: those
    chunks are read again, whole, in the new pool; only the chunk of the crash is read file by file."""
    jobs = dataset(tmp_path, 6 * CHUNK)
    write_dicom(tmp_path / "boom.dcm")
    jobs.insert(1, Job(tmp_path / "boom.dcm", "boom.dcm"))
    (tmp_path / "calls").mkdir()
    ahead = ReadAhead(jobs, OPTIONS, workers=2, check=crash_before_anything_is_read)
    try:
        reads = [ahead.record(job.path) for job in jobs]
    finally:
        ahead.close()
    assert [job.relpath for job, read in zip(jobs, reads, strict=True) if read is None] == []
    records = {job.relpath: read[0] for job, read in zip(jobs, reads, strict=True) if read is not None}
    boom = records.pop("boom.dcm")
    assert (boom.kind, boom.verdict, boom.error) == ("unreadable", "failed", CRASHED)
    assert list(records.values()) == [
        check_file(job.path, job.relpath, RULES, OPTIONS.tags) for job in jobs if job.relpath != "boom.dcm"
    ]
    calls = [note.read_text().split("\n") for note in (tmp_path / "calls").iterdir()]
    alone = sorted(files[0] for files in calls if len(files) == 1)
    assert alone == sorted(job.relpath for job in jobs[:CHUNK] if job.relpath != "boom.dcm")
    assert {path for files in calls for path in files} == set(records)


def test_close_ends_the_reading_processes(tmp_path: Path) -> None:
    """``close`` shuts the pool down now: an in-process ``pytest.main()`` (a notebook, a script,
    an IDE) must not leave reading processes behind until its interpreter ends."""
    jobs = dataset(tmp_path, 4 * CHUNK)
    ahead = ReadAhead(jobs, OPTIONS, workers=2)
    first = ahead.record(jobs[0].path)  # starts the readers, leaves chunks in flight
    readers = list(ahead._pool._processes)
    assert first is not None and len(readers) == 2
    assert wait_until_gone(readers, timeout=0) == readers
    ahead.close()
    assert wait_until_gone(readers) == []
    assert ahead is not None  # still referenced: the readers ended because of close, not of garbage collection


def test_readers_end_with_an_in_process_session(pytester: pytest.Pytester) -> None:
    """pytest_unconfigure closes the read-ahead: after ``pytest.main()`` returns, its readers are gone
    although the process that started them lives on (and holds the session's config)."""
    dataset(pytester.path / "data", 40)
    pytester.makeconftest(
        """
        from pytest_dicomqc.state import SESSION_KEY

        def pytest_sessionfinish(session):
            ahead = session.config.stash[SESSION_KEY].read_ahead
            with open("readers.txt", "w") as handle:
                handle.write(" ".join(str(pid) for pid in ahead._pool._processes))
        """
    )
    result = pytester.runpytest("--dicom-dir=data", "--dicom-workers=2", "-p", "no:cacheprovider")
    assert result.ret == 1
    assert len(read_sheet(pytester.path / "metadata_dicom.xlsx")) == 41
    readers = [int(pid) for pid in (pytester.path / "readers.txt").read_text().split()]
    assert len(readers) == 2
    assert wait_until_gone(readers) == []  # while ``result`` (its hook recorder) still holds the session's config


@pytest.mark.parametrize("workers", ["0", "2"])
def test_plugin_report_is_the_same_with_and_without_readers(pytester: pytest.Pytester, workers: str) -> None:
    dataset(pytester.path / "data", 30)
    result = pytester.runpytest_subprocess(
        "--dicom-dir=data", f"--dicom-workers={workers}", "-p", "no:cacheprovider", timeout=300
    )
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
    """A CI timeout sends SIGTERM: the session still ends cleanly and the readers exit. Without
    the handler pytest dies at once (its readers hold the output pipe open while they watch a
    parent that is a zombie until reaped): the wait for the exit code, not for the output, fails fast."""
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
    with started(command, pytester.path) as (process, output):
        assert output.wait_for("READY", timeout=120), output.text(timeout=0)[-3000:]
        group = group_members(process.pid)
        assert len(group) >= 4, group  # pytest, the forkserver and its two readers at least
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("pytest did not end within 60 s of SIGTERM:\n" + output.text(timeout=0)[-3000:])
        assert returncode == 2, output.text()[-3000:]
        assert wait_until_gone(group) == []
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx")
    assert len(rows) == 81
    statuses = {r["path"]: r["status"] for r in rows}
    assert (statuses["039.dcm"], statuses["040.dcm"], statuses["079.dcm"]) == ("passed", "not run", "not run")


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
    lines = done.stdout.splitlines()
    assert "dicomqc: 40 files: 40 passed" in lines
    assert lines[-1].startswith("43 passed, 1 skipped in ")  # the files, dicom-files, three default checks (1 empty)
    assert len(read_sheet(pytester.path / "metadata_dicom.xlsx", "Files")) == 40


READERS_PROBE = """
import os
from pytest_dicomqc.state import SESSION_KEY

def pytest_configure(config):
    os.cpu_count = lambda: 2  # the same answer on every machine

def pytest_sessionfinish(session):
    ahead = session.config.stash[SESSION_KEY].read_ahead
    where = getattr(session.config, "workerinput", {}).get("workerid", "main")
    with open(os.path.join(str(session.config.rootpath), "readers.txt"), "a") as handle:
        handle.write(f"{where}: {ahead._workers if ahead is not None else 'none'}\\n")
"""


@pytest.mark.parametrize(
    ("files", "ini", "options", "expected"),
    [
        (64, "", ["--dicom-workers=auto"], ["main: 2"]),
        (63, "", ["--dicom-workers=auto"], ["main: none"]),
        (64, "", [], ["main: 2"]),  # auto is the default
        (64, "dicom_workers = auto", [], ["main: 2"]),
        (64, "dicom_workers = 0", [], ["main: none"]),
        (64, "dicom_workers = 0", ["--dicom-workers=1"], ["main: 1"]),  # the command line wins
        (64, "", ["--dicom-workers=auto", "-n", "2"], ["gw0: none", "gw1: none", "main: none"]),
    ],
)
def test_plugin_starts_readers_as_configured(
    pytester: pytest.Pytester, files: int, ini: str, options: list[str], expected: list[str]
) -> None:
    """Whether a run reads ahead, and with how many processes, seen from inside the run."""
    for index in range(files):
        write_dicom(pytester.path / "data" / f"{index:03d}.dcm", pixels=np.full((4, 4), index, dtype=np.int16))
    pytester.makeconftest(READERS_PROBE)
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest_subprocess("--dicom-dir=data", "-p", "no:cacheprovider", *options, timeout=300)
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert sorted((pytester.path / "readers.txt").read_text().splitlines()) == expected
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx")
    assert [(r["path"], r["status"]) for r in rows] == [(f"{index:03d}.dcm", "passed") for index in range(files)]
