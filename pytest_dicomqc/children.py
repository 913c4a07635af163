"""Processes pytest-dicomqc starts (the readers, the report writer): started clean, tied to pytest.

They are started with ``spawn``, as children of pytest itself, and die with it: a killed pytest
(SIGKILL, an OOM kill, a CI timeout) never leaves one behind, holding a core or a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

PR_SET_PDEATHSIG = 1
"""Linux prctl(2): the signal a process gets when its parent dies."""


def tie_to_parent(parent: int) -> None:
    """In a child: end with pytest (process ``parent``), whatever ends it."""
    if not _die_with_parent():
        threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="dicomqc-parent-watch").start()
    if os.getppid() != parent:  # pytest died before the watch began
        os._exit(0)


def _die_with_parent() -> bool:
    """Have the kernel kill this process when pytest dies, even by SIGKILL and even while this
    process runs C code that never lets a Python thread run. Linux only: False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0


def _exit_with(parent: int) -> None:
    """Where the kernel cannot watch pytest for us: end this process when pytest is gone (killed,
    it cannot shut it down), instead of waiting for work forever."""
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


def pool_processes(pool: Any) -> list[Any]:
    """A ``ProcessPoolExecutor``'s processes (``multiprocessing.Process``), started by its last
    submit; none once it is shut down."""
    return list((getattr(pool, "_processes", None) or {}).values())


def kill_pool(pool: Any) -> None:
    """Kill a pool's processes at once, whatever they are doing (``kill_workers`` from Python
    3.14): before ``shutdown``, which forgets them."""
    for process in pool_processes(pool):
        with contextlib.suppress(OSError):
            process.kill()


def ignore_interrupts(parent: int) -> None:
    """A child's start (a pool's initializer): tied to pytest, and deaf to the Ctrl-C and SIGTERM
    its process group gets; pytest decides what happens then."""
    tie_to_parent(parent)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


@contextlib.contextmanager
def main_script_hidden() -> Iterator[None]:
    """Start processes without the main script: multiprocessing runs it again in each new process
    (as ``__mp_main__``), and a script that calls ``pytest.main()`` without an
    ``if __name__ == "__main__":`` guard would start a whole pytest session in every child.
    Children need only this package; ``python -m pytest`` and the ``pytest`` command are not
    affected either way."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not hasattr(main, "__file__"):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
