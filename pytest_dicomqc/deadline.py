"""Time limits on one file's check (``--dicom-file-timeout``), so that no file can hold the run.

Two limits, because Python cannot interrupt code that never returns to the interpreter:

- :func:`time_limit`: a real-time alarm (``SIGALRM``) raises :class:`FileTimedOut` in the
  checking thread when the file's time is up. It ends anything written in Python (pydicom's
  parser, the rules) wherever the file is read: in pytest's loop, in an xdist worker, in a
  reading process.
- :func:`cpu_limit`: in a reading process only, the kernel ends the process (``SIGXCPU``) once
  the file has used its time plus :data:`CPU_GRACE` of processor time, even inside a C
  decoder that holds the interpreter lock. The read-ahead pool then records the file as timed
  out and goes on with the others. pytest's own process is never given such a limit.
"""

from __future__ import annotations

import contextlib
import math
import resource
import signal
import threading
import time
from collections.abc import Iterator

CPU_GRACE = 2
"""Processor seconds past the file's time before the kernel ends a reading process that the
alarm could not stop (code in C that does not return to Python)."""


class FileTimedOut(BaseException):
    """The file's time is up. A BaseException, like KeyboardInterrupt: the reader's handlers of
    broken files (``except Exception``) must not turn it into an ``unreadable`` record."""


def timed_out_error(seconds: float) -> str:
    """The ``error`` of a file whose check took longer than ``seconds``."""
    return f"timed out after {seconds:g} s (--dicom-file-timeout)"


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`FileTimedOut` in this block after ``seconds`` (0: no limit).

    Only the main thread receives signals: elsewhere the block runs without a limit. A timer
    and handler set by someone else (pytest-timeout's signal method) are put back afterwards,
    with the time this block used taken off the timer.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, _time_is_up)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:
            left = previous_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), previous_interval)


def _time_is_up(signum: int, frame: object) -> None:
    raise FileTimedOut


@contextlib.contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """End this process if the block uses more than ``seconds`` + :data:`CPU_GRACE` of processor
    time (0: no limit). For reading processes only: the kernel's ``SIGXCPU`` kills the process."""
    if not seconds:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = math.ceil(usage.ru_utime + usage.ru_stime + seconds) + CPU_GRACE
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
