"""The Excel report: Files, Summary, Findings and Rules sheets, written atomically.

Text from DICOM files is hostile input for a spreadsheet: every string cell is stored as a
string (never a formula, whatever it starts with), stripped of characters XML cannot hold and
cut visibly at Excel's 32,767-character limit.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_dicomqc.dataset_checks import DatasetFinding, DatasetVerdict, involvement
from pytest_dicomqc.record import (
    FAIL,
    FIXED_COLUMNS,
    KIND_NON_DICOM,
    NOT_APPLICABLE,
    PASS,
    STATUSES,
    WARN,
    ReportRow,
    Scalar,
)
from pytest_dicomqc.rules.evaluate import expectation
from pytest_dicomqc.rules.model import RuleSet
from pytest_dicomqc.verdicts import ThresholdVerdict, WaiverUse
from pytest_dicomqc.writers.xlsx import Workbook

FILE_FINDING = "(file)"
"""The Findings sheet's rule column for a file that could not be read, decoded or was not DICOM."""
EXCEL_MAX_ROWS = 1_048_576
"""Rows a sheet holds, header included; the writer continues on a further sheet past it."""
_WIDTHS = {"path": 48, "error": 60, "message": 60, "notes": 40, "description": 50, "detail": 60, "value": 40}
_WIDTHS.update({"ImageType": 28, "transfer_syntax": 30, "SOPClass": 28, "observed": 30, "expected": 30})


@dataclass(frozen=True)
class Verdicts:
    """What the run concluded beyond single files, for the Summary and Waivers sheets."""

    thresholds: Sequence[ThresholdVerdict] = ()
    waivers: Sequence[WaiverUse] = ()
    run_facts: Sequence[tuple[str, Scalar]] = ()
    dataset: Sequence[DatasetVerdict] = ()


def write_workbook(
    path: Path,
    rows: Sequence[ReportRow],
    ruleset: RuleSet,
    value_columns: Sequence[str],
    verdicts: Verdicts,
) -> None:
    """Write the report to ``path`` via a temporary file, so a crash never leaves half a workbook."""
    # Beside the target (same file system, so the rename is atomic); created like any new file,
    # with the user's umask, unlike mkstemp's owner-only mode.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    workbook = Workbook(str(temporary))
    try:
        _write_sheets(workbook, rows, ruleset, value_columns, verdicts)
        workbook.close()
        os.replace(temporary, path)
    except BaseException:
        workbook.abandon()
        temporary.unlink(missing_ok=True)
        raise


def _write_sheets(
    workbook: Workbook, rows: Sequence[ReportRow], ruleset: RuleSet, value_columns: Sequence[str], verdicts: Verdicts
) -> None:
    rule_ids = [rule.id for rule in ruleset.rules]
    named = {path: ",".join(ids) for path, ids in involvement(verdicts.dataset).items()}
    _sheet(
        workbook,
        "Files",
        [*FIXED_COLUMNS, *value_columns, *rule_ids],
        _file_rows(rows, value_columns, rule_ids, named),
    )
    _sheet(workbook, "Summary", ["section", "item", "value", "detail"], _summary_rows(rows, ruleset, verdicts))
    _sheet(
        workbook,
        "Findings",
        ["path", "rule", "severity", "observed", "expected", "message", "waiver"],
        _finding_rows(rows),
    )
    _sheet(
        workbook,
        "Dataset",
        [
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
        ],
        _dataset_rows(ruleset, verdicts.dataset),
    )
    _sheet(
        workbook,
        "Rules",
        ["id", "severity", "target", "operator", "expected", "allow_missing", "when", "description", "line"],
        _rule_rows(ruleset),
    )
    _sheet(
        workbook,
        "Waivers",
        ["id", "status", "files", "path", "sop_instance_uid", "rules", "reason", "expires", "defined in"],
        (
            [
                w.id,
                use.status,
                use.files,
                w.path,
                w.sop_instance_uid,
                ",".join(w.rules),
                w.reason,
                w.expires,
                f"{w.source}:{w.line}",
            ]
            for use in verdicts.waivers
            for w in (use.waiver,)
        ),
    )


def _sheet(workbook: Workbook, title: str, header: Sequence[str], rows: Iterable[Sequence[Scalar]]) -> None:
    """One sheet, continued on "Files (2)", "Files (3)", … when Excel's row limit is reached."""
    widths = [_WIDTHS.get(name, max(10, len(name) + 3)) for name in header]
    remaining: Iterator[Sequence[Scalar]] = iter(rows)
    part, part_title = 1, title
    while True:
        workbook.write_sheet(part_title, header, widths, itertools.islice(remaining, EXCEL_MAX_ROWS - 1))
        following = next(remaining, None)
        if following is None:
            return
        part += 1
        part_title = f"{title} ({part})"
        remaining = itertools.chain([following], remaining)


def _file_rows(
    rows: Sequence[ReportRow], value_columns: Sequence[str], rule_ids: Sequence[str], named: Mapping[str, str]
) -> Iterable[list[Scalar]]:
    for row in rows:
        record = row.record
        if record is None:
            yield [
                row.path,
                "",
                row.status,
                "",
                "",
                row.error,
                "",
                *([None] * len(value_columns)),
                *([""] * len(rule_ids)),
            ]
            continue
        yield [
            row.path,
            record.kind,
            row.status,
            ",".join(record.failed_rules),
            ",".join(record.warned_rules),
            record.error or row.error,
            named.get(row.path, ""),
            *(record.values.get(column) for column in value_columns),
            *(record.results.get(rule_id, "") for rule_id in rule_ids),
        ]


def _finding_rows(rows: Sequence[ReportRow]) -> Iterable[list[Scalar]]:
    """Every reason a file did not pass: read or decode errors first, then the rules."""
    for row in rows:
        record = row.record
        if record is None:
            if row.error:
                yield [row.path, FILE_FINDING, "error", row.status, "", row.error, ""]
            continue
        if record.error:
            yield [
                row.path,
                FILE_FINDING,
                "error",
                record.kind,
                "readable DICOM with decodable pixels",
                record.error,
                "",
            ]
        elif record.kind == KIND_NON_DICOM and row.status == "failed":
            yield [row.path, FILE_FINDING, "error", record.kind, "DICOM", "non-DICOM files fail (non_dicom: fail)", ""]
        for f in record.findings:
            yield [row.path, f.rule_id, f.severity, f.observed, f.expected, f.message, f.waiver]


def _summary_rows(rows: Sequence[ReportRow], ruleset: RuleSet, verdicts: Verdicts) -> Iterable[list[Scalar]]:
    statuses = Counter(row.status for row in rows)
    yield ["files", "total", len(rows), ""]
    for status in STATUSES:
        yield ["status", status, statuses.get(status, 0), ""]
    kinds = Counter(row.record.kind for row in rows if row.record is not None)
    for kind, count in sorted(kinds.items()):
        yield ["kind", kind, count, ""]
    for rule in ruleset.rules:
        results = Counter(row.record.results.get(rule.id) for row in rows if row.record is not None)
        applicable = sum(results[r] for r in (PASS, FAIL, WARN))
        yield [
            "rule",
            rule.id,
            results[FAIL] + results[WARN],
            f"{rule.severity}; applicable {applicable}, passed {results[PASS]}, failed {results[FAIL]}, "
            f"warned {results[WARN]}, not applicable {results[NOT_APPLICABLE]}",
        ]
    for verdict in verdicts.thresholds:
        yield ["threshold", verdict.rule_id, "passed" if verdict.passed else "failed", verdict.message]
    for dataset in verdicts.dataset:
        yield ["dataset", dataset.check.id, dataset.status, dataset.message]
    for name, value in verdicts.run_facts:
        yield ["run", name, value, ""]


def _dataset_rows(ruleset: RuleSet, verdicts: Sequence[DatasetVerdict]) -> Iterable[list[Scalar]]:
    """One row per problem found (a group of files); a check that found none gets one row, and
    one that was not judged (partial run, ``--deselect``) says so."""
    judged = {verdict.check.id: verdict for verdict in verdicts}
    for check in ruleset.dataset:
        verdict = judged.get(check.id)
        if verdict is None:
            why = "not judged: it needs every file (partial run) or was deselected"
            yield [check.id, check.type, "not run", check.severity, why, "", "", "", 0, "", check.description]
            continue
        for finding in verdict.findings or (DatasetFinding("", "", ()),):
            status = "waived" if finding.waiver else verdict.status
            facts = [check.id, check.type, status, check.severity, verdict.scope, finding.group, finding.problem]
            yield [*facts, "\n".join(finding.files), len(finding.files), finding.waiver, check.description]


def _rule_rows(ruleset: RuleSet) -> Iterable[list[Scalar]]:
    for rule in ruleset.rules:
        when = "; ".join(f"{c.target} {expectation(c.check)}" for c in rule.when)
        yield [
            rule.id,
            rule.severity,
            str(rule.target),
            rule.check.operator,
            expectation(rule.check),
            rule.allow_missing,
            when,
            rule.description,
            rule.line,
        ]
