"""Machine-readable results (``--dicom-json``): JSON Lines, one record per file, then a summary.

File records are made one at a time as rows stream in, so a pipeline can follow a long run; the
summary, written last, carries what is known only at the end (the verdict, per-rule counts,
dataset checks and the files they named, waivers).
Every line follows the packaged JSON Schema, ``pytest_dicomqc/report.schema.json``. Like the
workbook, these functions format the :class:`~pytest_dicomqc.conclusion.Conclusion` and never
count. Pure: no file I/O here, the caller writes :func:`line` of each record.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_dicomqc.columns import THIS_RUN
from pytest_dicomqc.conclusion import Conclusion, Result, RuleTally, WaiverUse
from pytest_dicomqc.dataset_checks import DatasetFinding, DatasetVerdict
from pytest_dicomqc.record import STATUS_NOT_RUN, Finding, ReportRow, Scalar

SCHEMA_VERSION = 1
"""Bumped only when a key is removed, renamed or changes meaning; added keys keep it."""
SCHEMA_RESOURCE = "report.schema.json"
"""The JSON Schema of one line, a resource of the ``pytest_dicomqc`` package."""
FILE_RECORD = "file"
SUMMARY_RECORD = "summary"
RECORD_TYPES = (FILE_RECORD, SUMMARY_RECORD)

_ESCAPED = re.compile("[\u0080-\u009f\u2028\u2029\ud800-\udfff]")
"""Characters ``json.dumps(ensure_ascii=False)`` leaves raw that would break a line: lone
surrogates cannot be encoded as UTF-8 (a file name that is not UTF-8 holds them), and C1
controls (NEL) and U+2028/U+2029 end a line for ``str.splitlines`` and some readers."""


def file_record(row: ReportRow) -> dict[str, Any]:
    """One file, as the Files sheet shows it; which dataset checks named it is in the summary."""
    record = row.record
    return {
        "record": FILE_RECORD,
        "schema": SCHEMA_VERSION,
        "path": row.path,
        "status": row.status,
        "kind": None if record is None else record.kind,
        "checked": _checked(row),
        "error": ((record.error if record is not None else "") or row.error) or None,
        "failed_rules": [] if record is None else record.failed_rules,
        "warned_rules": [] if record is None else record.warned_rules,
        "values": {} if record is None else dict(record.values),
        "results": {} if record is None else dict(record.results),
        "findings": [] if record is None else [_finding(finding) for finding in record.findings],
        "waivers": [] if record is None else list(record.waivers),
    }


def file_lines(rows: Iterable[ReportRow]) -> str:
    """The file records of ``rows``, as lines."""
    return "".join(line(file_record(row)) for row in rows)


def _checked(row: ReportRow) -> str | None:
    """When the row's result was made: this run, an earlier one (partial runs), or never."""
    if row.earlier:
        return row.earlier
    return None if row.status == STATUS_NOT_RUN else THIS_RUN


def _finding(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule_id,
        "severity": finding.severity,
        "observed": finding.observed,
        "expected": finding.expected,
        "message": finding.message,
        "waiver": finding.waiver or None,
    }


def summary_record(conclusion: Conclusion, run_facts: Sequence[tuple[str, Scalar]]) -> dict[str, Any]:
    """The last line: the conclusion's numbers as they were computed, nothing counted here."""
    return {
        "record": SUMMARY_RECORD,
        "schema": SCHEMA_VERSION,
        "verdict": conclusion.verdict,
        "headline": conclusion.headline,
        "complete": conclusion.complete,
        "files": len(conclusion.rows),
        "statuses": dict(conclusion.statuses),
        "kinds": dict(conclusion.kinds),
        "failed_without_a_rule": dict(conclusion.failed_without_a_rule),
        "earlier": conclusion.earlier,
        "rules": [_rule(tally) for tally in conclusion.tallies],
        "results": [_result(result) for result in conclusion.results],
        "dataset": [_dataset(verdict) for verdict in conclusion.dataset],
        "waivers": [_waiver(use) for use in conclusion.waivers],
        "run": dict(run_facts),
    }


def _rule(tally: RuleTally) -> dict[str, Any]:
    threshold = tally.rule.max_failing
    return {
        "id": tally.rule.id,
        "severity": tally.rule.severity,
        "max_failing": None if threshold is None else threshold.text,
        "applicable": tally.applicable,
        "passed": tally.passed,
        "failed": tally.failed,
        "warned": tally.warned,
        "waived": tally.waived,
        "not_applicable": tally.not_applicable,
        "unchecked": tally.unchecked,
        "failing": tally.failing,
    }


def _result(result: Result) -> dict[str, Any]:
    return {"name": result.name, "status": result.status, "outcome": result.outcome, "message": result.message}


def _dataset(verdict: DatasetVerdict) -> dict[str, Any]:
    """A judged dataset check; one not judged (partial run, deselected) is only in ``results``."""
    check = verdict.check
    return {
        "check": check.id,
        "type": check.type,
        "status": verdict.status,
        "severity": check.severity,
        "scope": verdict.scope,
        "groups": verdict.groups,
        "files": verdict.files,
        "left_out": verdict.left_out,
        "problems": [_problem(finding) for finding in verdict.findings],
    }


def _problem(finding: DatasetFinding) -> dict[str, Any]:
    return {
        "group": finding.group,
        "problem": finding.problem,
        "files": list(finding.files),
        "waiver": finding.waiver or None,
    }


def _waiver(use: WaiverUse) -> dict[str, Any]:
    waiver = use.waiver
    return {
        "id": waiver.id,
        "status": use.status,
        "files": use.files,
        "rules": list(waiver.rules),
        "path": waiver.path,
        "sop_instance_uid": waiver.sop_instance_uid,
        "reason": waiver.reason,
        "expires": waiver.expires,
        "defined_in": f"{waiver.source}:{waiver.line}",
    }


def line(record: dict[str, Any]) -> str:
    """One JSON Lines line, ``\\n`` included: valid UTF-8 and a single line whatever the text holds.

    Text is written as UTF-8, except the characters of :data:`_ESCAPED`, written as ``\\uXXXX``
    escapes (a JSON reader gives the same string back). A non-finite float (NaN, infinities)
    becomes the text ``nan``, ``inf`` or ``-inf``, as record values already hold it."""
    try:
        text = _dumps(record)
    except ValueError:  # allow_nan=False: a non-finite float somewhere (never in records today)
        text = _dumps(_finite(record))
    if not text.isascii():  # most records are: the scan costs more than the JSON's own escaping
        text = _ESCAPED.sub(_escape, text)
    return text + "\n"


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _escape(match: re.Match[str]) -> str:
    """A JSON escape is right here: with ``ensure_ascii=False`` only string contents are not ASCII."""
    return f"\\u{ord(match.group()):04x}"


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as its text, as ``extract`` writes one."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(float(value))
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
