"""Watching child processes from tests without ever blocking forever on them.

A test that reads ``for line in process.stdout`` hangs if the child never prints what it waits
for, and ``communicate()`` waits for every process holding the pipe (reading processes too),
not for the child: these helpers read in a thread, with a deadline, and find processes by
process group rather than by parent (reading processes are children of the forkserver).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class LineReader:
    """Collects a Popen's text output in a thread, so that a test can wait for a line with a deadline."""

    def __init__(self, stream: Iterable[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True, name="test-line-reader")
        self._thread.start()

    def _pump(self, stream: Iterable[str]) -> None:
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us
            for line in stream:
                self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, marker: str, timeout: float) -> bool:
        """True once a line containing ``marker`` was read; False at the deadline or at the end of the output."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                self._queue.put(None)  # stays ended for the next caller
                return False
            self.lines.append(line)
            if marker in line:
                return True

    def text(self, timeout: float = 5.0) -> str:
        """Everything read so far, after waiting up to ``timeout`` for the output to end."""
        self.wait_for("\0never printed\0", timeout)
        return "".join(self.lines)


@contextlib.contextmanager
def started(command: list[str], cwd: Path, **options: object) -> Iterator[tuple[subprocess.Popen[str], LineReader]]:
    """Start ``command`` in a process group of its own, read its output in a thread, and kill the
    whole group when the test is done, whatever happened: no reading process outlives a failed test."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **options,  # type: ignore[call-overload]
    )
    assert process.stdout is not None
    try:
        yield process, LineReader(process.stdout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie has ended and only waits to be reaped)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``: a child started in a session of its own and all
    its descendants, the forkserver's reading processes included."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return sorted(members)


def wait_until_gone(pids: Iterable[int], timeout: float = 30.0) -> list[int]:
    """The processes of ``pids`` still alive after up to ``timeout`` seconds (an empty list: all ended)."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


# Run as root without the capabilities that let root read any file: dropped from the bounding set
# in a small trampoline process that then execs the command, so that they stay dropped in
# everything it starts (xdist workers, readers). No preexec_fn: forking a threaded process and
# running Python before exec can deadlock where no timeout reaches.
WITHOUT_FILE_CAPABILITIES = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
os.execv(sys.argv[1], sys.argv[1:])
"""
Unprivileged = tuple[list[str], dict[str, Any]]
"""The words before a command, and the Popen options, that run it without the right to read any file."""


def _root_without_file_capabilities() -> Unprivileged:
    return [sys.executable, "-c", WITHOUT_FILE_CAPABILITIES], {}


def _nobody() -> Unprivileged:
    user = pwd.getpwnam("nobody")
    return [], {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def unprivileged(work: Path) -> Unprivileged | None:
    """How to run a command so that a file without read permission cannot be read: as it is for a
    user; as root (CI), root without its file capabilities, else the user nobody (where it can run
    this Python); None where there is no such way."""
    if os.geteuid() != 0:
        return [], {}
    locked = work / "probe"
    locked.write_text("secret")
    locked.chmod(0)
    probe = [sys.executable, "-c", "import pytest_dicomqc, xdist; open('probe')"]
    for make in (_root_without_file_capabilities, _nobody):
        try:
            prefix, options = make()
            done = subprocess.run([*prefix, *probe], cwd=work, capture_output=True, text=True, timeout=60, **options)
        except (OSError, KeyError, subprocess.SubprocessError):
            continue
        if "PermissionError" in done.stderr and "probe" in done.stderr:
            locked.unlink()
            return prefix, options
    locked.unlink()
    return None
