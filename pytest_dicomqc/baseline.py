"""``--dicom-baseline``: the earlier report a run is compared with, read while the run goes on.

Reading a workbook back takes openpyxl about 0.6 ms per row (13 s for 20,000 files): done at
the end, it would come on top of the run. A process of its own reads it from the start, as the
files are being checked, and hands back only what the comparison reads.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from pytest_dicomqc.children import main_script_hidden, tie_to_parent
from pytest_dicomqc.compare import ReportTables, compared


class BaselineError(ValueError):
    """The baseline is no report that can be read; the message names it and why."""


class BaselineReading:
    def __init__(self, path: Path) -> None:
        self.path = path
        with main_script_hidden():
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=tie_to_parent, initargs=(os.getpid(),)
            )
            self._tables: Future[ReportTables] = self._pool.submit(_read, path)

    def tables(self) -> ReportTables:
        """The baseline's tables; :class:`BaselineError` when it is no readable report."""
        try:
            return self._tables.result()
        finally:
            self._pool.shutdown()

    def close(self) -> None:
        """A run that ends without comparing (interrupted early) does not wait for the read."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.kill()


def _read(path: Path) -> ReportTables:
    from pytest_dicomqc.readback import ReportError, load_tables  # pandas: only in this process

    try:
        return compared(load_tables(path))
    except ReportError as exc:
        raise BaselineError(str(exc)) from None
