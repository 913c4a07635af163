"""What each sheet of the report holds, declared once: titles, headers, widths, which columns carry
a status word, and the rows, formatted from the one :class:`~pytest_dicomqc.conclusion.Conclusion`.

Pure: nothing here counts (the conclusion did) and nothing writes a file (``workbook`` does).
The per-file sheets (Files, Findings) are formatted row by row as the run streams them; the others
once the run is concluded, into an :class:`EndOfRun` that crosses to the writing process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pytest_dicomqc.columns import Column, ValueColumn, file_columns
from pytest_dicomqc.compare import CHANGES_HEADER, ReportTables
from pytest_dicomqc.conclusion import DICOM_FILES, Conclusion
from pytest_dicomqc.dataset_checks import DatasetFinding
from pytest_dicomqc.record import KIND_NON_DICOM, STATUSES, ReportRow, Scalar
from pytest_dicomqc.rules.evaluate import expectation
from pytest_dicomqc.rules.model import COUNT, DISJOINT, RuleSet
from pytest_dicomqc.rules.regex import Regex

Style = Literal["good", "bad", "warn", "waived", "muted"]
STATUS_STYLES: dict[str, Style] = {
    # rule cells
    "PASS": "good",
    "FAIL": "bad",
    "WARN": "warn",
    "WAIVED": "waived",
    "N/A": "muted",
    # file statuses, dataset results, waivers, severities, changes between runs
    "passed": "good",
    "failed": "bad",
    "crashed": "bad",
    "error": "bad",
    "warning": "warn",
    "empty": "warn",
    "waived": "waived",
    "skipped": "muted",
    "not run": "muted",
    "not judged": "muted",
    "active": "good",
    "expired": "bad",
    "stale": "warn",
    "unused in this partial run": "muted",
    "new failure": "bad",
    "fixed": "good",
}
"""Every status word the report shows, and the colour its cells get (conditional formatting)."""
assert set(STATUSES) <= set(STATUS_STYLES)

FILE_FINDING = "(file)"
"""The Findings sheet's rule column for a file that could not be read, decoded or was not DICOM."""
DATASET_FINDING = "dataset::"
"""Prefix of the Findings sheet's rule column for a dataset check that named the file."""


@dataclass(frozen=True)
class Sheet:
    title: str
    header: tuple[str, ...]
    widths: tuple[int, ...]
    statuses: tuple[str, ...] = ()
    """Columns whose cells are status words, coloured by :data:`STATUS_STYLES`."""
    wrapped: tuple[str, ...] = ()
    """Columns whose text may span lines: wrapped, the row made tall enough."""
    frozen_columns: int = 0


_WIDE = {"path": 48, "error": 60, "message": 60, "description": 50, "detail": 70, "value": 24, "files": 48}
_WIDE.update({"observed": 30, "expected": 30, "problem": 50, "checked": 40, "item": 28, "series": 40})
_WIDE.update({"failing rules": 36, "dataset problems": 30, "study": 30, "SeriesInstanceUID": 40, "folder": 30})


def _sheet(title: str, header: Sequence[str], **facts: object) -> Sheet:
    widths = tuple(_WIDE.get(name, max(10, len(name) + 3)) for name in header)
    return Sheet(title, tuple(header), widths, **facts)  # type: ignore[arg-type]


SUMMARY = _sheet("Summary", ("section", "item", "value", "detail"), statuses=("value",), wrapped=("detail",))
SUMMARY_HEADER_ROW = 2
"""0-based row of the Summary table's header: the verdict headline and a blank row come first."""
FINDINGS = _sheet(
    "Findings",
    ("path", "rule", "severity", "observed", "expected", "message", "waiver"),
    statuses=("severity",),
    wrapped=("message",),
    frozen_columns=1,
)
SERIES = _sheet(
    "Series",
    (
        "series",
        "folder",
        "SeriesInstanceUID",
        "modality",
        "study",
        "files",
        "failed",
        "warned",
        "waived",
        "failing rules",
        "dataset problems",
        "rows x columns",
        "slices",
        "pixel spacing",
        "slice thickness",
    ),
    frozen_columns=1,
)
DATASET = _sheet(
    "Dataset",
    (
        "check",
        "type",
        "status",
        "severity",
        "checked",
        "group",
        "problem",
        "files",
        "file count",
        "waiver",
        "description",
    ),
    statuses=("status", "severity"),
    wrapped=("files", "checked", "problem"),
)
RULES = _sheet(
    "Rules",
    ("id", "severity", "target", "operator", "expected", "allow_missing", "when", "description", "line"),
    statuses=("severity",),
)
WAIVERS = _sheet(
    "Waivers",
    ("id", "status", "files", "path", "sop_instance_uid", "rules", "reason", "expires", "defined in"),
    statuses=("status",),
)
CHANGES = _sheet("Changes", CHANGES_HEADER, statuses=("change",), frozen_columns=2)


@dataclass(frozen=True)
class FilesPlan:
    """What the writing process needs to format the Files sheet, fixed before the first row."""

    values: tuple[ValueColumn, ...]
    rule_ids: tuple[str, ...]
    split: Regex | None

    @property
    def columns(self) -> tuple[Column, ...]:
        return file_columns(self.values, self.rule_ids, self.split)

    def sheet(self) -> Sheet:
        columns = self.columns
        return Sheet(
            "Files",
            tuple(c.name for c in columns),
            tuple(c.width for c in columns),
            statuses=("status", *self.rule_ids),
            wrapped=("error",),
            frozen_columns=1,
        )


def run_tables(plan: FilesPlan, rows: Iterable[ReportRow], ruleset: RuleSet, names: Sequence[str]) -> ReportTables:
    """This run as :func:`~pytest_dicomqc.compare.compare` reads a report: the Files sheet's
    ``names`` columns (formatted as the sheet shows them) and the Rules sheet."""
    columns = [column for column in plan.columns if column.name in names]
    files = {row.path: {column.name: _as_read(column.cell(row)) for column in columns} for row in rows}
    rules = {
        str(values[0]): dict(zip(RULES.header, map(_as_read, values), strict=True)) for values in _rule_rows(ruleset)
    }
    return ReportTables(files=files, rules=rules)


def _as_read(value: Scalar) -> Scalar:
    """A cell as a report read back gives it: an empty text is no cell at all."""
    return None if value == "" else value


def files_plan(ruleset: RuleSet, values: Sequence[ValueColumn]) -> FilesPlan:
    return FilesPlan(tuple(values), tuple(rule.id for rule in ruleset.rules), split_pattern(ruleset))


def split_pattern(ruleset: RuleSet) -> Regex | None:
    """The split folders the Files sheet names: those of the first dataset check that compares
    splits (``disjoint``, or a ``count`` per split); none without such a check."""
    for check in ruleset.dataset:
        if check.type == DISJOINT or (check.type == COUNT and check.group_by is None):
            return check.split
    return None


FileCells = tuple[str, list[Scalar], list[list[Scalar]]]
"""A file as the workbook writes it: its path, its Files row, its Findings rows."""


def file_cells(columns: Sequence[Column], rows: Iterable[ReportRow]) -> list[FileCells]:
    """The files' cells: computed where the rows are (a merge computes them beside its reading,
    so that the writing process only writes)."""
    return [(row.path, [column.cell(row) for column in columns], list(finding_rows(row))) for row in rows]


def finding_rows(row: ReportRow) -> Iterable[list[Scalar]]:
    """Every reason a file did not pass: read or decode errors first, then the rules."""
    record = row.record
    if record is None:
        if row.error:
            yield [row.path, FILE_FINDING, "error", row.status, "", row.error, ""]
        return
    if record.error:
        expected = "readable DICOM with decodable pixels"
        yield [row.path, FILE_FINDING, "error", record.kind, expected, record.error, ""]
    elif record.kind == KIND_NON_DICOM and row.status == "failed":
        yield [row.path, FILE_FINDING, "error", record.kind, "DICOM", "non-DICOM files fail (non_dicom: fail)", ""]
    for f in record.findings:
        yield [row.path, f.rule_id, f.severity, f.observed, f.expected, f.message, f.waiver]


@dataclass(frozen=True)
class EndOfRun:
    """Everything the report shows that is known only once the run is concluded, formatted."""

    headline: str
    verdict: str
    summary: list[list[Scalar]]
    chart_rows: tuple[int, int] | None
    """First and last 0-based Summary table row (below the header) of the per-rule failure
    counts the bar chart draws; ``None`` without rules."""
    series: list[list[Scalar]]
    dataset: list[list[Scalar]]
    dataset_findings: list[list[Scalar]]
    rules: list[list[Scalar]]
    waivers: list[list[Scalar]]
    flagged: dict[str, str]
    """Files named by a dataset problem no waiver accepted: path -> ``failed`` or ``warning``."""
    changes: list[list[Scalar]] | None = None
    """The Changes sheet's rows when the run was compared with a baseline."""
    json_summary: dict[str, object] | None = None
    rows: list[ReportRow] = field(default_factory=list)
    """Files the writing process has not been sent yet, in report order."""


def end_of_run(
    conclusion: Conclusion,
    ruleset: RuleSet,
    run_facts: Sequence[tuple[str, Scalar]],
    changes: list[list[Scalar]] | None = None,
    json_summary: dict[str, object] | None = None,
) -> EndOfRun:
    summary, chart_rows = _summary_rows(conclusion, run_facts)
    return EndOfRun(
        headline=conclusion.headline,
        verdict=conclusion.verdict,
        summary=summary,
        chart_rows=chart_rows,
        series=_series_rows(conclusion),
        dataset=list(_dataset_rows(ruleset, conclusion)),
        dataset_findings=list(_dataset_finding_rows(conclusion)),
        rules=list(_rule_rows(ruleset)),
        waivers=list(_waiver_rows(conclusion)),
        flagged=conclusion.flagged,
        changes=changes,
        json_summary=json_summary,
    )


def _summary_rows(
    conclusion: Conclusion, run_facts: Sequence[tuple[str, Scalar]]
) -> tuple[list[list[Scalar]], tuple[int, int] | None]:
    """The conclusion's numbers as they were computed: nothing is counted here. The order is the
    reading order of a data manager: verdict, files by status, the rules (charted), the dataset
    checks, then the facts of the run."""
    rows: list[list[Scalar]] = [["verdict", conclusion.verdict, conclusion.headline, ""]]
    rows.append(["files", "total", len(conclusion.rows), ""])
    rows += [["status", status, count, ""] for status, count in conclusion.statuses.items()]
    if conclusion.failed_without_a_rule:
        failed, why = conclusion.failed_without_a_rule_count, conclusion.failed_without_a_rule_why
        rows.append(["files", "failed with no rule failing", failed, why])
    if conclusion.earlier:
        rows.append(["files", "from earlier runs", conclusion.earlier, conclusion.partial_run_text])
    rows += [["kind", kind, count, ""] for kind, count in conclusion.kinds.items()]
    first_rule = len(rows)
    for tally in conclusion.tallies:
        rows.append(
            [
                "rule",
                tally.rule.id,
                tally.failing,
                f"{tally.rule.severity}; applicable {tally.applicable}, passed {tally.passed}, "
                f"failed {tally.failed}, warned {tally.warned}, waived {tally.waived}, "
                f"not applicable {tally.not_applicable}, not checked {tally.unchecked}",
            ]
        )
    chart_rows = (first_rule, len(rows) - 1) if conclusion.tallies else None
    for result in conclusion.results:
        section, _, item = result.name.rpartition("::")
        rows.append([{"rule": "threshold", "": "dataset"}.get(section, section), item, result.status, result.message])
    rows += [["run", name, value, ""] for name, value in run_facts]
    return rows, chart_rows


def _series_rows(conclusion: Conclusion) -> list[list[Scalar]]:
    return [
        [
            tally.label,
            tally.folder,
            tally.uid,
            tally.shown("Modality"),
            tally.shown("StudyInstanceUID"),
            tally.files,
            tally.failed,
            tally.warned,
            tally.waived,
            ", ".join(f"{rule}: {count:,}" for rule, count in tally.rules),
            ", ".join(f"{check}: {count:,}" for check, count in tally.problems),
            tally.shown("size"),
            tally.slices,
            tally.shown("PixelSpacing"),
            tally.shown("SliceThickness"),
        ]
        for tally in conclusion.series
    ]


def _dataset_rows(ruleset: RuleSet, conclusion: Conclusion) -> Iterable[list[Scalar]]:
    """One row per problem found (a group of files); a check that found none gets one row, and
    one that was not judged (partial run, ``--deselect``) or took no file says why."""
    results = {result.name: result for result in conclusion.results}
    minimum = results[DICOM_FILES]
    yield [DICOM_FILES, "min_dicom_files", minimum.status, "error", minimum.message, "", "", "", 0, "", ""]
    judged = {verdict.check.id: verdict for verdict in conclusion.dataset}
    for check in ruleset.dataset:
        verdict = judged.get(check.id)
        if verdict is None:
            result = results[f"dataset::{check.id}"]
            yield [
                check.id,
                check.type,
                result.status,
                check.severity,
                result.message,
                "",
                "",
                "",
                0,
                "",
                check.description,
            ]
            continue
        scope = verdict.message if verdict.checked_nothing else verdict.scope
        for finding in verdict.findings or (DatasetFinding("", "", ()),):
            status = "waived" if finding.waiver else verdict.status
            facts = [check.id, check.type, status, check.severity, scope, finding.group, finding.problem]
            yield [*facts, "\n".join(finding.files), len(finding.files), finding.waiver, check.description]


def _dataset_finding_rows(conclusion: Conclusion) -> Iterable[list[Scalar]]:
    """Per file, each dataset problem that named it: the Findings sheet lists every reason a file
    is at fault, its own rules and the dataset's."""
    for verdict in conclusion.dataset:
        for finding in verdict.findings:
            rule = DATASET_FINDING + verdict.check.id
            for path in finding.files:
                yield [path, rule, verdict.check.severity, finding.group, "", finding.problem, finding.waiver]


def _rule_rows(ruleset: RuleSet) -> Iterable[list[Scalar]]:
    for rule in ruleset.rules:
        when = "; ".join(f"{c.target} {expectation(c.check)}" for c in rule.when)
        target, expected = str(rule.target), expectation(rule.check)
        yield [
            rule.id,
            rule.severity,
            target,
            rule.check.operator,
            expected,
            rule.allow_missing,
            when,
            rule.description,
            rule.line,
        ]


def _waiver_rows(conclusion: Conclusion) -> Iterable[list[Scalar]]:
    for use in conclusion.waivers:
        w = use.waiver
        rules = ",".join(w.rules)
        yield [
            w.id,
            use.status,
            use.files,
            w.path,
            w.sop_instance_uid,
            rules,
            w.reason,
            w.expires,
            f"{w.source}:{w.line}",
        ]
