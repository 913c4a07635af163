"""The Excel report: Files, Summary, Findings and Rules sheets, written atomically.

Text from DICOM files is hostile input for a spreadsheet: every string cell is stored as a
string (never a formula, whatever it starts with), stripped of characters XML cannot hold and
cut visibly at Excel's 32,767-character limit.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pytest_dicomqc.columns import Named, file_columns
from pytest_dicomqc.conclusion import DICOM_FILES, Conclusion
from pytest_dicomqc.dataset_checks import DatasetFinding
from pytest_dicomqc.record import KIND_NON_DICOM, ReportRow, Scalar
from pytest_dicomqc.rules.evaluate import expectation
from pytest_dicomqc.rules.model import RuleSet
from pytest_dicomqc.writers.xlsx import Workbook

FILE_FINDING = "(file)"
"""The Findings sheet's rule column for a file that could not be read, decoded or was not DICOM."""
EXCEL_MAX_ROWS = 1_048_576
"""Rows a sheet holds, header included; the writer continues on a further sheet past it."""
_WIDTHS = {"path": 48, "error": 60, "message": 60, "description": 50, "detail": 60, "value": 40}
_WIDTHS.update({"observed": 30, "expected": 30, "files": 48, "problem": 50, "checked": 40})


def write_workbook(
    path: Path,
    conclusion: Conclusion,
    ruleset: RuleSet,
    value_columns: Sequence[str],
    run_facts: Sequence[tuple[str, Scalar]],
) -> None:
    """Write the report to ``path`` via a temporary file, so a crash never leaves half a workbook.

    The temporary file lies beside the target (same file system: the rename is atomic) and is
    created exclusively, under a name no one can predict, never through a link someone planted in
    a shared folder (``mkstemp``: ``O_EXCL | O_NOFOLLOW``). Its name carries this process's id, so
    that the leftover of a killed run is recognised, and removed, by the next one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=PARTIAL)
    temporary = Path(name)
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # like any new file, not mkstemp's owner-only mode
        with os.fdopen(descriptor, "wb") as stream:
            workbook = Workbook(stream)
            try:
                _write_sheets(workbook, conclusion, ruleset, value_columns, run_facts)
                workbook.close()
            except BaseException:
                workbook.abandon()
                raise
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


PARTIAL = ".dicomqc-partial"
"""Suffix of a report being written: ``.<report name>.<pid>.<random><suffix>``."""


def remove_leftovers(path: Path) -> None:
    """Remove partial reports of ``path`` left by runs that were killed (their process is gone)."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*{PARTIAL}"):
        pid = leftover.name[len(path.name) + 2 :].partition(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                leftover.unlink()  # a link is removed itself, never its target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, another user's
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_sheets(
    workbook: Workbook,
    conclusion: Conclusion,
    ruleset: RuleSet,
    value_columns: Sequence[str],
    run_facts: Sequence[tuple[str, Scalar]],
) -> None:
    columns = file_columns(value_columns, [rule.id for rule in ruleset.rules])
    named: Named = conclusion.named
    _sheet(
        workbook,
        "Files",
        [c.name for c in columns],
        ([column.cell(row, named) for column in columns] for row in conclusion.rows),
        [c.width for c in columns],
    )
    _sheet(workbook, "Summary", ["section", "item", "value", "detail"], _summary_rows(conclusion, run_facts))
    _sheet(
        workbook,
        "Findings",
        ["path", "rule", "severity", "observed", "expected", "message", "waiver"],
        _finding_rows(conclusion.rows),
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
        _dataset_rows(ruleset, conclusion),
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
            for use in conclusion.waivers
            for w in (use.waiver,)
        ),
    )


def _sheet(
    workbook: Workbook,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Scalar]],
    widths: Sequence[int] | None = None,
) -> None:
    """One sheet, continued on "Files (2)", "Files (3)", … when Excel's row limit is reached."""
    if widths is None:
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


def _summary_rows(conclusion: Conclusion, run_facts: Sequence[tuple[str, Scalar]]) -> Iterable[list[Scalar]]:
    """The conclusion's numbers as they were computed: nothing is counted here."""
    yield ["verdict", conclusion.verdict, conclusion.headline, ""]
    yield ["files", "total", len(conclusion.rows), ""]
    for status, count in conclusion.statuses.items():
        yield ["status", status, count, ""]
    if conclusion.earlier:
        yield ["files", "from earlier runs", conclusion.earlier, "not checked in this run; unchanged since"]
    for kind, count in conclusion.kinds.items():
        yield ["kind", kind, count, ""]
    for tally in conclusion.tallies:
        yield [
            "rule",
            tally.rule.id,
            tally.failing,
            f"{tally.rule.severity}; applicable {tally.applicable}, passed {tally.passed}, failed {tally.failed}, "
            f"warned {tally.warned}, waived {tally.waived}, not applicable {tally.not_applicable}, "
            f"not checked {tally.unchecked}",
        ]
    for result in conclusion.results:
        section, _, item = result.name.rpartition("::")
        yield [{"rule": "threshold", "": "dataset"}.get(section, section), item, result.status, result.message]
    for name, value in run_facts:
        yield ["run", name, value, ""]


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
        scope = verdict.message if verdict.status == "empty" else verdict.scope
        for finding in verdict.findings or (DatasetFinding("", "", ()),):
            status = "waived" if finding.waiver else verdict.status
            facts = [check.id, check.type, status, check.severity, scope, finding.group, finding.problem]
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
