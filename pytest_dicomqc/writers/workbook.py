"""The Excel report, written by XlsxWriter: the Files and Findings sheets row by row as the run
streams them, the rest once it is concluded.

XlsxWriter (BSD-2-Clause) writes files that Excel, LibreOffice and openpyxl open without a
repair prompt, with the conditional formats, chart, frozen and filtered headers a data manager
expects. It runs in ``constant_memory`` mode: each sheet streams to a temporary file, rows in
order, so the memory stays flat at 10^6 files. Text from DICOM files is hostile input: strings are
never turned into formulas, URLs or numbers (workbook options), characters XML cannot hold are
dropped, lone surrogates escaped, and text is cut visibly at Excel's 32,767-character limit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from pytest_dicomqc.columns import Column
from pytest_dicomqc.record import ReportRow, Scalar
from pytest_dicomqc.writers.rows import LINE_HEIGHT, MAX_LINES, RowsFile, cell_text, clean_text, is_number, splice
from pytest_dicomqc.writers.sheets import (
    CHANGES,
    DATASET,
    FINDINGS,
    RULES,
    SERIES,
    STATUS_STYLES,
    SUMMARY,
    SUMMARY_HEADER_ROW,
    WAIVERS,
    EndOfRun,
    FileCells,
    FilesPlan,
    Sheet,
    Style,
    file_cells,
)

EXCEL_MAX_ROWS = 1_048_576
"""Rows a sheet holds, header included; the writer continues on a further sheet past it."""
ZIP64_ROWS = 400_000
"""Past this many Files rows a sheet's XML may pass 4 GiB: the package then uses zip64."""
_COLOURS: dict[Style, tuple[str, str]] = {
    # fill, font: Excel's own "Good", "Bad", "Neutral" cell styles, and two of the same family
    "good": ("#C6EFCE", "#006100"),
    "bad": ("#FFC7CE", "#9C0006"),
    "warn": ("#FFEB9C", "#9C5700"),
    "waived": ("#DDEBF7", "#1F4E78"),
    "muted": ("#EDEDED", "#595959"),
}
_VERDICT_STYLES: dict[str, Style] = {"PASSED": "good", "FAILED": "bad", "INCOMPLETE": "warn"}
_FLAG_STYLES: dict[str, Style] = {"failed": "bad", "warning": "warn"}
WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


@dataclass
class _Part:
    """A sheet of the workbook: the first of a table, or a continuation past Excel's row limit."""

    worksheet: Any
    name: str
    """Its part in the package, ``xl/worksheets/sheetN.xml``."""
    rows: RowsFile | None
    """Where its data rows go, when they are not XlsxWriter's to write (:mod:`~.rows`)."""
    written: int = 0


class _SheetWriter:
    """One table (and its continuations past Excel's row limit), written row after row: by
    XlsxWriter, or for a large table (``bulk``) into a rows file spliced in when it closes."""

    def __init__(self, report: ReportWorkbook, sheet: Sheet, header_row: int = 0, bulk: bool = True) -> None:
        self.report = report
        self.sheet = sheet
        self.header_row = header_row
        self.bulk = bulk
        self.parts: list[_Part] = []
        self.wrapped = {sheet.header.index(name) for name in sheet.wrapped}
        self._add_part(sheet.title)

    def _add_part(self, title: str) -> None:
        worksheet = self.report.book.add_worksheet(title)
        for index, width in enumerate(self.sheet.widths):
            wrap = self.report.formats["wrap"] if index in self.wrapped else None
            worksheet.set_column(index, index, width, wrap)
        rows = RowsFile(len(self.sheet.header), self.wrapped) if self.bulk else None
        self.parts.append(_Part(worksheet, f"xl/worksheets/sheet{len(self.report.book.worksheets())}.xml", rows))

    @property
    def worksheet(self) -> Any:
        return self.parts[-1].worksheet

    def header(self) -> None:
        """The header row: bold, frozen (with the first columns), filtered at :meth:`finish`."""
        worksheet = self.worksheet
        worksheet.write_row(self.header_row, 0, self.sheet.header, self.report.formats["header"])
        worksheet.freeze_panes(self.header_row + 1, self.sheet.frozen_columns)

    def rows(self, rows: Iterable[Sequence[Scalar]]) -> None:
        for values in rows:
            part = self.parts[-1]
            if self.header_row + part.written + 1 >= EXCEL_MAX_ROWS:
                self._add_part(f"{self.sheet.title} ({len(self.parts) + 1})")
                self.header()
                part = self.parts[-1]
            row = self.header_row + part.written + 1
            if part.rows is not None:
                part.rows.write(row, values)
            else:
                self.report.write_row(part.worksheet, row, values, self.wrapped)
            part.written += 1

    @property
    def written(self) -> int:
        return sum(part.written for part in self.parts)

    def finish(self) -> None:
        """Filters on the header, and the status colours over every part's rows."""
        columns = len(self.sheet.header)
        statuses = [self.sheet.header.index(name) for name in self.sheet.statuses if name in self.sheet.header]
        for part in self.parts:
            first, last = self.header_row + 1, self.header_row + max(part.written, 1)
            part.worksheet.autofilter(self.header_row, 0, self.header_row + part.written, columns - 1)
            if statuses:
                self.report.colour_statuses(part.worksheet, first, last, statuses)

    def spliced(self) -> dict[str, RowsFile]:
        return {part.name: part.rows for part in self.parts if part.rows is not None}

    def close(self) -> None:
        for part in self.parts:
            if part.rows is not None:
                part.rows.close()


class ReportWorkbook:
    """The report being written to ``target`` (a binary stream); :meth:`finish` completes it."""

    def __init__(self, target: IO[bytes], files: FilesPlan, large: bool = False) -> None:
        self.target = target
        self.large = large
        self._written = tempfile.TemporaryFile(prefix="dicomqc-workbook-")  # noqa: SIM115 - closed in finish
        self.book = xlsxwriter.Workbook(self._written, WORKBOOK_OPTIONS)
        self.formats = {
            "header": self.book.add_format({"bold": True, "bottom": 1, "bg_color": "#F2F2F2"}),
            "wrap": self.book.add_format({"text_wrap": True, "valign": "top"}),
            "plain": self.book.add_format(),
        }
        self.styles = {
            style: self.book.add_format({"bg_color": fill, "font_color": font})
            for style, (fill, font) in _COLOURS.items()
        }
        self.verdicts = {
            verdict: self.book.add_format(
                {"bold": True, "font_size": 14, "bg_color": _COLOURS[style][0], "font_color": _COLOURS[style][1]}
            )
            for verdict, style in _VERDICT_STYLES.items()
        }
        self.columns: tuple[Column, ...] = files.columns
        # tab order is the order sheets are added: the Summary first, written last
        self.summary = _SheetWriter(self, SUMMARY, SUMMARY_HEADER_ROW, bulk=False)
        self.files = _SheetWriter(self, files.sheet())
        self.series = _SheetWriter(self, SERIES)
        self.findings = _SheetWriter(self, FINDINGS)
        self.dataset = _SheetWriter(self, DATASET)
        self.rules = _SheetWriter(self, RULES, bulk=False)
        self.waivers = _SheetWriter(self, WAIVERS, bulk=False)
        self.files.header()
        self.findings.header()
        self.paths: dict[str, int] = {}
        """Files row (0-based, below the header, over all parts) of each path written."""

    def add_files(self, rows: Iterable[ReportRow]) -> None:
        """The next rows of the Files sheet (in report order), and their findings."""
        self.add_cells(file_cells(self.columns, rows))

    def add_cells(self, cells: Iterable[FileCells]) -> None:
        """:meth:`add_files` of cells computed elsewhere (:func:`~pytest_dicomqc.writers.sheets.file_cells`)."""
        for path, values, findings in cells:
            self.paths[path] = self.files.written
            self.files.rows((values,))
            self.findings.rows(findings)

    def finish(self, end: EndOfRun) -> None:
        self.add_files(end.rows)
        self.findings.rows(end.dataset_findings)
        self._flag(end.flagged)
        self.files.finish()
        self.findings.finish()
        self._summary(end)
        for writer, rows in (
            (self.series, end.series),
            (self.dataset, end.dataset),
            (self.rules, end.rules),
            (self.waivers, end.waivers),
        ):
            writer.header()
            writer.rows(rows)
            writer.finish()
        writers = [self.summary, self.files, self.series, self.findings, self.dataset, self.rules, self.waivers]
        if end.changes is not None:  # the last sheet: added once the run has been compared
            changes = _SheetWriter(self, CHANGES)
            changes.header()
            changes.rows(end.changes)
            changes.finish()
            writers.append(changes)
        self.book.close()
        parts = {name: rows for writer in writers for name, rows in writer.spliced().items()}
        try:
            splice(self._written, self.target, parts, self.large)
        finally:
            self._written.close()
            for writer in writers:
                writer.close()

    def _summary(self, end: EndOfRun) -> None:
        summary = self.summary
        summary.worksheet.write_string(0, 0, clean_text(end.headline), self.verdicts[end.verdict])
        summary.header()
        summary.rows(end.summary)
        summary.finish()
        if end.chart_rows is not None:
            first, last = (SUMMARY_HEADER_ROW + 1 + row for row in end.chart_rows)
            chart = self.book.add_chart({"type": "bar"})
            title = SUMMARY.title
            chart.add_series(
                {
                    "name": "files failing",
                    "categories": [title, first, 1, last, 1],
                    "values": [title, first, 2, last, 2],
                    "fill": {"color": _COLOURS["bad"][1]},
                    "data_labels": {"value": True},
                }
            )
            chart.set_title({"name": "Files failing each rule"})
            chart.set_legend({"none": True})
            chart.set_y_axis({"reverse": True})  # rules top to bottom, as in the table
            chart.set_size({"width": 640, "height": max(240, 28 * (last - first + 1) + 80)})
            summary.worksheet.insert_chart(SUMMARY_HEADER_ROW, len(SUMMARY.header) + 1, chart)

    def _flag(self, flagged: dict[str, str]) -> None:
        """Colour the path of every file a dataset problem named (conditional formats may cover
        any cell, also of rows streamed long before the problem was known)."""
        by_style: dict[Style, list[int]] = {}
        for path, status in flagged.items():
            row = self.paths.get(path)
            if row is not None:
                by_style.setdefault(_FLAG_STYLES[status], []).append(row)
        for style, rows in by_style.items():
            for worksheet, ranges in self._ranges_by_part(sorted(rows)):
                worksheet.conditional_format(
                    ranges[0], {"type": "no_blanks", "format": self.styles[style], "multi_range": " ".join(ranges)}
                )

    def _ranges_by_part(self, rows: list[int]) -> Iterable[tuple[Any, list[str]]]:
        """Consecutive rows as ``A2:A5`` ranges, per part of the Files sheet."""
        start = 0
        for sheet in self.files.parts:
            stop = start + sheet.written
            part = [row - start for row in rows if start <= row < stop]
            start = stop
            if not part:
                continue
            ranges, first, previous = [], part[0], part[0]
            for row in [*part[1:], None]:
                if row is not None and row == previous + 1:
                    previous = row
                    continue
                ranges.append(f"A{first + 2}" if first == previous else f"A{first + 2}:A{previous + 2}")
                if row is not None:
                    first = previous = row
            yield sheet.worksheet, ranges

    def colour_statuses(self, worksheet: Any, first: int, last: int, columns: Sequence[int]) -> None:
        """One conditional format per status word over the status columns: the file stays small
        whatever the number of rows, and a cell edited by hand is coloured again."""
        multi_range = " ".join(_span(column, first, last) for column in _runs(columns))
        top_left = multi_range.split(" ")[0]
        for word, style in STATUS_STYLES.items():
            worksheet.conditional_format(
                top_left,
                {
                    "type": "cell",
                    "criteria": "==",
                    "value": f'"{word}"',
                    "format": self.styles[style],
                    "multi_range": multi_range,
                },
            )

    def write_row(self, worksheet: Any, row: int, values: Sequence[Scalar], wrapped: set[int]) -> None:
        """Each cell by its type: text as a string, never a formula; numbers; booleans; blanks
        left out. A row with multi-line text in a wrapped column is made tall enough to show it."""
        lines = 1
        for column, value in enumerate(values):
            if value is None or value == "":
                continue
            if value is True or value is False:
                worksheet.write_boolean(row, column, value)
            elif is_number(value):
                worksheet.write_number(row, column, value)
            else:
                text = cell_text(value)
                if column in wrapped and "\n" in text:
                    lines = max(lines, min(MAX_LINES, text.count("\n") + 1))
                if text.startswith("<r>") and text.endswith("</r>"):
                    # XlsxWriter copies such text into the sheet as XML (it takes it for a rich
                    # string it made): as a rich string of two plain parts, it is escaped
                    worksheet.write_rich_string(row, column, text[:-4], self.formats["plain"], text[-4:])
                else:
                    worksheet.write_string(row, column, text)
        if lines > 1:
            worksheet.set_row(row, LINE_HEIGHT * lines)


def _runs(columns: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted column indexes as runs of neighbours: (first, last)."""
    runs: list[tuple[int, int]] = []
    for column in sorted(set(columns)):
        if runs and runs[-1][1] == column - 1:
            runs[-1] = (runs[-1][0], column)
        else:
            runs.append((column, column))
    return runs


def _span(columns: tuple[int, int], first: int, last: int) -> str:
    return f"{xl_col_to_name(columns[0])}{first + 1}:{xl_col_to_name(columns[1])}{last + 1}"
