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

from pytest_dicomqc.children import ignore_interrupts, kill_pool, main_script_hidden
from pytest_dicomqc.compare import ReportTables, compared


class BaselineError(ValueError):
    """The baseline is no report that can be read; the message names it and why."""


class BaselineReading:
    def __init__(self, path: Path) -> None:
        self.path = path
        with main_script_hidden():
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=ignore_interrupts,
                initargs=(os.getpid(),),
            )
            self._tables: Future[ReportTables] = self._pool.submit(_read, path)

    def tables(self) -> ReportTables:
        """The baseline's tables; :class:`BaselineError` when it is no readable report, or the
        reading process failed (killed, out of memory)."""
        try:
            return self._tables.result()
        except BaselineError:
            raise
        except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, a bug in the reader: said, not raised
            raise BaselineError(f"{self.path}: could not be read: {type(exc).__name__}: {exc}") from None
        finally:
            self._pool.shutdown()

    def close(self) -> None:
        """A run that ends without comparing (interrupted, ``--collect-only``, the dataset
        deselected) does not wait for the read."""
        kill_pool(self._pool)
        self._pool.shutdown(wait=True, cancel_futures=True)


def _read(path: Path) -> ReportTables:
    from pytest_dicomqc.readback import ReportError, load_tables  # pandas: only in this process

    try:
        return compared(load_tables(path))
    except ReportError as exc:
        raise BaselineError(str(exc)) from None
