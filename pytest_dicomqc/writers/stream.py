"""Rows to the report as the run makes them: a writing process on the second core.

pytest's loop is the bottleneck of a run (one core); the report's cost would come on top of it at
the end. So each file's row goes, in report order, to a process that writes it at once, and at the
end only what the conclusion adds (Summary, Series, Dataset… and the rows still missing) is left
to write. Small datasets, partial runs and any failure of the writing process fall back to writing
in pytest's own process, with the same code (:mod:`~pytest_dicomqc.writers.report`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import threading
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_dicomqc.children import ignore_interrupts, main_script_hidden
from pytest_dicomqc.record import ReportRow
from pytest_dicomqc.writers.report import ReportFiles, ReportPlan, write_report
from pytest_dicomqc.writers.sheets import EndOfRun, FileCells

STREAM_MIN_FILES = 1_000
"""Datasets smaller than this are written at the end, in pytest's process: starting a process
(about 0.5 s on the second core) costs more than their rows."""
BATCH = 256
"""Rows sent at a time: one message, one pickle, repeated texts pickled once."""
CELLS_AHEAD = 4
"""Batches of cells a merge may have handed over and not yet sent (:meth:`ReportStream.send_cells`)."""
POLL = 0.2
"""Seconds between checks that the writing process still lives, while waiting for it."""


class ReportStream:
    """The controller's end of the report: rows in report order as they come, then :meth:`finish`."""

    def __init__(self, plan: ReportPlan, order: Sequence[str], stream: bool) -> None:
        self.plan = plan
        self.order = list(order)
        """Dataset-relative paths of the files in report order (collection order)."""
        self._sent: list[ReportRow] = []
        """The rows of :attr:`order` handed to the writing process: a row replaced since (a
        crashed xdist worker's report came late) is not the one written."""
        self._batch: list[ReportRow] = []
        self._process: Any = None
        self._room = threading.Semaphore(CELLS_AHEAD)
        if stream and len(self.order) >= STREAM_MIN_FILES:
            self._start()

    @classmethod
    def of_parts(cls, plan: ReportPlan) -> ReportStream:
        """The merge's stream: files arrive in report order as their cells (:meth:`send_cells`),
        made by the merge where it reads them; the writing process only writes. Nothing is kept
        here to write again."""
        stream = cls(plan, (), stream=False)
        stream._start()
        return stream

    def send_cells(self, cells: list[FileCells], json_lines: str) -> None:
        """Waits while :data:`CELLS_AHEAD` batches are not yet sent: what waits here is memory
        the merge means to save. Raises what :meth:`finish_sent` would as soon as the writing
        process is gone: the merge stops reading."""
        if self._process is None:
            raise self._failure()
        self._room.acquire()
        self._outbox.put(("cells", (cells, json_lines)))

    def finish_sent(self, end: EndOfRun) -> None:
        """:meth:`finish` of the merge's stream, whose rows were all sent. Raises ``OSError`` as
        :meth:`finish` does (its path: a folder that cannot be written, a full disk), and
        ``RuntimeError`` for a bug in the writing process or when it is gone (killed)."""
        if self._process is None or not self._finish_in_process_writer(end):
            raise self._failure()

    def _failure(self) -> Exception:
        """Why the writing process stopped: what it said before it ended, if it said anything."""
        try:
            outcome, detail = self._results.recv() if self._results.poll(0) else ("gone", "")
        except (EOFError, OSError):
            outcome, detail = "gone", ""
        return _error(outcome, detail) or RuntimeError("the report writing process ended before the report was written")

    @property
    def sent(self) -> int:
        """Rows of :attr:`order` handed to the writing process."""
        return len(self._sent)

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        inbox, self._to_writer = context.Pipe(duplex=False)
        self._results, results = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve,
            args=(self.plan, inbox, results, os.getpid()),
            name="dicomqc-report-writer",
            daemon=True,
        )
        with main_script_hidden():
            process.start()
        inbox.close()
        results.close()
        self._process = process
        # Pickling and sending happen in a thread: a pipe blocks its sender while the writing
        # process is busy, and pytest's loop must never wait for it. (A multiprocessing.Queue
        # does the same, with semaphores the resource tracker then complains about.)
        self._outbox: queue.SimpleQueue[tuple[str, object] | None] = queue.SimpleQueue()
        self._feeder = threading.Thread(target=self._feed, name="dicomqc-report-feeder", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        try:
            while (message := self._outbox.get()) is not None:
                self._to_writer.send(message)
                if message[0] == "cells":
                    self._room.release()
        except BaseException:  # noqa: BLE001 - gone, or a row that cannot be sent: the process is
            self.abandon()  # stopped, and finish() writes the report in pytest's process
            self._room.release()  # a merge waiting for room then learns it from send_cells
        finally:
            self._to_writer.close()

    def advance(self, rows: Mapping[str, ReportRow]) -> None:
        """Send the rows now complete at the front of the report order (xdist's workers finish
        files out of order: a row waits in ``rows`` until those before it are there)."""
        if self._process is None:
            return
        order, sent = self.order, self._sent
        while len(sent) < len(order) and order[len(sent)] in rows:
            row = rows[order[len(sent)]]
            self._batch.append(row)
            sent.append(row)
        if len(self._batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._outbox.put(("rows", self._batch))
            self._batch = []

    def finish(self, rows: Sequence[ReportRow], end: EndOfRun) -> None:
        """Complete the report with the final ``rows`` (every file, in report order) and ``end``.
        Raises ``OSError`` when a file cannot be written (the disk is full, a folder vanished)."""
        if self._process is not None:
            self._flush()
            streamed = self.sent
            if len(rows) >= streamed and all(row is sent for row, sent in zip(rows, self._sent, strict=False)):
                if self._finish_in_process_writer(dataclasses.replace(end, rows=list(rows[streamed:]))):
                    return
            else:  # rows came in another order (a partial xdist run): written here, whole
                self.abandon()
        write_report(self.plan, dataclasses.replace(end, rows=list(rows)))

    def _finish_in_process_writer(self, end: EndOfRun) -> bool:
        """Hand the end of the run over and wait; False if the writing process is gone."""
        process = self._process
        self._outbox.put(("finish", end))
        self._outbox.put(None)
        while not self._results.poll(POLL):
            if not process.is_alive() and not self._results.poll(0):
                self._process = None
                return False  # killed (out of memory?): pytest's process writes the report
        try:
            outcome, detail = self._results.recv()
        except EOFError:
            outcome, detail = "gone", ""
        process.join()
        self._process = None
        error = _error(outcome, detail)
        if error is not None:
            raise error
        return bool(outcome == "written")

    def abandon(self) -> None:
        """Stop the writing process; it leaves the previous report files as they were."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join()
            self._outbox.put(None)


def _error(outcome: str, detail: Any) -> Exception | None:
    """The error a writing process's outcome stands for: a file that could not be written, or a bug."""
    if outcome == "oserror":
        return OSError(*detail)
    if outcome == "error":
        return RuntimeError(f"the report writing process failed:\n{detail}")
    return None


def _serve(plan: ReportPlan, inbox: Any, results: Any, parent: int) -> None:
    """The writing process: rows until the end of the run, then the rest, then the outcome."""
    ignore_interrupts(parent)  # pytest decides when the report is done
    try:
        with ReportFiles(plan) as files:
            while True:
                kind, payload = inbox.recv()
                if kind == "rows":
                    files.add(payload)
                    continue
                if kind == "cells":
                    files.add_cells(*payload)
                    continue
                files.finish(payload)
                break
    except OSError as exc:
        results.send(("oserror", (exc.errno, exc.strerror or str(exc), exc.filename)))
    except BaseException:  # noqa: BLE001 - a bug: told to pytest, which fails with it
        results.send(("error", traceback.format_exc()))
    else:
        results.send(("written", None))
