"""The report's files written in one process: the workbook and, if asked for, the JSON Lines and
the part file of the records (``--dicom-records``).

Whichever process writes them (the writing process while the run goes on, or pytest's own at the
end), it is this code: rows are added in report order, then the end of the run completes both
files, each moved into place only when whole (:mod:`~pytest_dicomqc.writers.atomic`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pytest_dicomqc.parts import PartHeader, PartWriter
from pytest_dicomqc.record import ReportRow
from pytest_dicomqc.writers.atomic import replacing
from pytest_dicomqc.writers.sheets import EndOfRun, FileCells, FilesPlan, file_cells
from pytest_dicomqc.writers.workbook import ZIP64_ROWS, ReportWorkbook


@dataclass(frozen=True)
class ReportPlan:
    """What is written where, fixed before the first row; crosses to the writing process."""

    workbook: Path
    files: FilesPlan
    json: Path | None = None
    expected_files: int = 0
    records: Path | None = None
    part: PartHeader | None = None
    """The part file's header (its ``files`` is :attr:`expected_files`), when ``records`` is written."""


class ReportFiles:
    """The report being written: rows as they come, then :meth:`finish`. Used in a ``with``
    block: leaving it by an error leaves the previous report files as they were."""

    def __init__(self, plan: ReportPlan) -> None:
        self.plan = plan
        self._stack = contextlib.ExitStack()
        try:
            self.workbook = ReportWorkbook(
                self._stack.enter_context(replacing(plan.workbook)),
                plan.files,
                large=plan.expected_files > ZIP64_ROWS,
            )
            self.json: IO[bytes] | None = None
            if plan.json is not None:
                self.json = self._stack.enter_context(replacing(plan.json))
            self.part: PartWriter | None = None
            if plan.records is not None and plan.part is not None:
                header = dataclasses.replace(plan.part, files=plan.expected_files)
                self.part = PartWriter(self._stack.enter_context(replacing(plan.records)), plan.records, header)
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __enter__(self) -> ReportFiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.__exit__(*exc_info)  # type: ignore[arg-type]

    def add(self, rows: Iterable[ReportRow]) -> None:
        rows = list(rows)
        if self.json is not None:
            from pytest_dicomqc.writers.jsonl import file_lines

            self.add_cells(file_cells(self.workbook.columns, rows), file_lines(rows))
        else:
            self.add_cells(file_cells(self.workbook.columns, rows))
        if self.part is not None:
            self.part.add(rows)

    def add_cells(self, cells: Iterable[FileCells], json_lines: str = "") -> None:
        """Rows as their cells and JSON Lines, made elsewhere (a merge makes them where it reads)."""
        self.workbook.add_cells(cells)
        if self.json is not None:
            self.json.write(json_lines.encode("utf-8", "backslashreplace"))

    def finish(self, end: EndOfRun) -> None:
        self.add(end.rows)
        self.workbook.finish(dataclasses.replace(end, rows=[]))
        if self.json is not None and end.json_summary is not None:
            from pytest_dicomqc.writers.jsonl import line

            self.json.write(line(end.json_summary).encode("utf-8", "backslashreplace"))
        if self.part is not None:
            self.part.finish()


def write_report(plan: ReportPlan, end: EndOfRun) -> None:
    """The whole report at once, in this process: ``end.rows`` holds every file."""
    with ReportFiles(dataclasses.replace(plan, expected_files=len(end.rows))) as files:
        files.finish(end)
