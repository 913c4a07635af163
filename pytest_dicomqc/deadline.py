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
from typing import Any

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

    Only the main thread receives signals: elsewhere the block runs without a limit. An alarm
    set by someone else (pytest-timeout's signal method) that comes first is left alone, as it
    ends the test sooner; one that comes later is put back afterwards, less the time used.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_delay, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    if previous_delay and previous_delay <= seconds:
        yield
        return
    started = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, _time_is_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _put_back(previous_handler, previous_delay, previous_interval, time.monotonic() - started)


def _put_back(handler: Any, delay: float, interval: float, used: float) -> None:
    """Disarm this block's alarm and put the previous one back (``delay`` less the time ``used``),
    with the signal held meanwhile: an alarm of this block's that comes as it ends must not reach
    the previous handler (by default, SIGALRM ends the process)."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if signal.SIGALRM in signal.sigpending():
            signal.sigtimedwait({signal.SIGALRM}, 0)  # came too late: dropped
        signal.signal(signal.SIGALRM, handler)
        if delay:
            signal.setitimer(signal.ITIMER_REAL, max(delay - used, 1e-6), interval)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


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
