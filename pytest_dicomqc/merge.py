"""``python -m pytest_dicomqc merge PARTS…``: the shards of one run (``--dicom-shard``) as one report.

The parts are checked to form one run (every shard of N once, the same rules, dataset and
versions) before anything is written. Their rows are then merged in collection order, streamed to
the report (workbook, JSON Lines, JUnit XML) as they come, and only what the conclusion reads is
kept of each file (:data:`~pytest_dicomqc.conclusion.CONCLUDED_VALUES`). The dataset checks and
thresholds are judged over every record, exactly as a single run judges them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import heapq
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

from pytest_dicomqc import __version__
from pytest_dicomqc.conclusion import CONCLUDED_VALUES, Conclusion, Scope, conclude
from pytest_dicomqc.parts import PartError, PartHeader, read_header, rows
from pytest_dicomqc.pipeline import value_columns
from pytest_dicomqc.record import ITEM_NAME, ReportRow, Scalar
from pytest_dicomqc.rules.load import RulesError, parse_rules, parse_waivers
from pytest_dicomqc.rules.model import RuleSet
from pytest_dicomqc.writers.atomic import replacing
from pytest_dicomqc.writers.jsonl import file_lines, summary_record
from pytest_dicomqc.writers.junit_xml import JunitFile
from pytest_dicomqc.writers.report import ReportPlan
from pytest_dicomqc.writers.sheets import end_of_run, file_cells, files_plan
from pytest_dicomqc.writers.stream import ReportStream
from pytest_dicomqc.writers.terminal import conclusion_lines

BATCH = 1_000
"""Rows handed to the report files at a time."""
PROGRESS_AFTER = 3.0
"""Seconds of merging before progress is shown."""
PROGRESS_EVERY = 5.0


@dataclass(frozen=True)
class Outputs:
    report: Path
    json: Path | None = None
    junitxml: Path | None = None


def check_parts(parts: Sequence[Path]) -> list[PartHeader]:
    """Every part's header, once they are known to form one complete run; else :class:`PartError`
    naming what is missing or does not match."""
    headers = [read_header(path) for path in parts]
    first, where = headers[0], parts[0]
    for path, header in zip(parts, headers, strict=True):
        for what, mine, theirs in (
            ("number of shards", header.shards, first.shards),
            ("rules (fingerprint)", header.fingerprint, first.fingerprint),
            ("dataset", header.dataset, first.dataset),
            ("pytest-dicomqc version", header.plugin, first.plugin),
            ("pydicom version", header.pydicom, first.pydicom),
        ):
            if mine != theirs:
                shown = (str(mine)[:12], str(theirs)[:12]) if what.endswith("(fingerprint)") else (mine, theirs)
                raise PartError(f"{path} and {where} are not of one run: other {what}: {shown[0]} and {shown[1]}")
    if first.plugin != __version__:
        raise PartError(
            f"{where} was written by pytest-dicomqc {first.plugin}; merge it with that version, not {__version__}"
        )
    seen: dict[int, Path] = {}
    for path, header in zip(parts, headers, strict=True):
        if header.shard in seen:
            raise PartError(f"shard {header.shard}/{header.shards} given twice: {seen[header.shard]} and {path}")
        seen[header.shard] = path
    missing = [f"{k}/{first.shards}" for k in range(1, first.shards + 1) if k not in seen]
    if missing:
        raise PartError(f"missing shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} of the run")
    return headers


def ruleset_of(headers: Sequence[PartHeader]) -> RuleSet:
    """The rules (and waivers) exactly as the shards read them, waivers expired or not as on the
    day the first shard ran: the files' verdicts were judged then."""
    (source, text), *waivers = headers[0].rules
    today = min(dt.datetime.fromisoformat(header.created).date() for header in headers)
    ruleset = parse_rules(text, source, today)
    for waivers_source, waivers_text in waivers:
        ruleset = parse_waivers(waivers_text, waivers_source, ruleset, today)
    return ruleset


def merged_rows(parts: Sequence[Path], headers: Sequence[PartHeader]) -> Iterator[tuple[ReportRow, ReportRow]]:
    """Every part's rows in collection order, as the conclusion keeps them and whole; a file
    found in two parts is refused."""
    previous = None
    streams = [rows(path, header, CONCLUDED_VALUES) for path, header in zip(parts, headers, strict=True)]
    for _, kept, whole in heapq.merge(*streams, key=lambda entry: entry[0]):
        if kept.path == previous:
            raise PartError(f"{kept.path} is in two parts: the parts are not the shards of one run")
        previous = kept.path
        yield kept, whole


class Progress:
    """``merged 120,000 of 1,000,000 files (12%)`` on stderr, once the merge has taken a while."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.started = self.shown = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.started >= PROGRESS_AFTER and now - self.shown >= PROGRESS_EVERY:
            self.shown = now
            share = 100 * done // self.total if self.total else 100
            print(f"dicomqc merge: {done:,} of {self.total:,} files ({share}%)", file=self.stream, flush=True)


def merge(parts: Sequence[Path], outputs: Outputs, out: TextIO | None = None) -> int:
    """The merge command's work, printed to ``out`` (standard output); the exit status: 0 the run
    passed, 1 it did not."""
    started = time.time()
    headers = check_parts(parts)
    header = headers[0]
    try:
        ruleset = ruleset_of(headers)
    except (RulesError, ValueError) as exc:
        raise PartError(f"{parts[0]}: its rules do not load here: {exc}") from None
    total = sum(part.files for part in headers)
    plan = ReportPlan(
        outputs.report, files_plan(ruleset, value_columns(ruleset)), json=outputs.json, expected_files=total
    )
    kept: list[ReportRow] = []
    progress = Progress(total, sys.stderr)
    stream = ReportStream.of_parts(plan)  # the workbook written on the second core
    try:
        gc.disable()  # 10^6 kept rows and no cycle among them: each collection would scan them all
        with _junit(outputs.junitxml) as junit:
            batch: list[ReportRow] = []
            for row, whole in merged_rows(parts, headers):
                kept.append(row)
                batch.append(whole)
                if len(batch) >= BATCH:
                    _send(stream, plan, junit, batch)
                    batch = []
                    progress.update(len(kept))
            _send(stream, plan, junit, batch)
            conclusion = conclude(kept, ruleset, Scope(header.dataset, strict=header.strict))
            facts = _run_facts(parts, headers, outputs, started)
            json_summary = summary_record(conclusion, facts) if outputs.json is not None else None
            stream.finish_sent(end_of_run(conclusion, ruleset, facts, json_summary=json_summary))
            if junit is not None:
                junit.finish(conclusion)
    finally:
        gc.enable()
        stream.abandon()  # after an error: the report files are left as they were
    _print(conclusion, ruleset, outputs, out or sys.stdout)
    return 0 if conclusion.verdict == "PASSED" else 1


def _send(stream: ReportStream, plan: ReportPlan, junit: JunitFile | None, rows: list[ReportRow]) -> None:
    """The rows' cells to the writing process; the cells and the JSON are made here, where the
    rows are: the writing process is the busier of the two."""
    json_lines = file_lines(rows) if plan.json is not None else ""
    stream.send_cells(file_cells(plan.files.columns, rows), json_lines)
    if junit is not None:
        junit.add(rows)


@contextlib.contextmanager
def _junit(path: Path | None) -> Iterator[JunitFile | None]:
    if path is None:
        yield None
        return
    target: IO[bytes]
    with replacing(path) as target:
        yield JunitFile(target)


def _run_facts(
    parts: Sequence[Path], headers: Sequence[PartHeader], outputs: Outputs, started: float
) -> list[tuple[str, Scalar]]:
    header = headers[0]
    now = time.time()
    written: list[tuple[str, Scalar]] = [("report", str(outputs.report))]
    written += [("json lines", str(outputs.json))] if outputs.json is not None else []
    written += [("junit xml", str(outputs.junitxml))] if outputs.junitxml is not None else []
    return [
        ("dataset", header.dataset),
        ("rules file", header.rules[0][0]),
        *written,
        ("merged parts", ", ".join(str(path) for path in parts)),
        ("shards", header.shards),
        ("shards started", min(part.created for part in headers)),
        ("started", _iso(started)),
        ("finished", _iso(now)),
        ("duration (s)", round(now - started, 3)),
        ("pytest-dicomqc", __version__),
        ("pydicom", header.pydicom),
        ("python", sys.version.split()[0]),
    ]


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def _print(conclusion: Conclusion, ruleset: RuleSet, outputs: Outputs, out: TextIO) -> None:
    """What a single run prints: the failing results whole (pytest's failures section), then the
    plugin's summary section."""
    for result in conclusion.results:
        if result.outcome == "failed":
            print(f"____ {ITEM_NAME}::{result.name} ____", file=out)
            print(result.text, file=out)
    print(" dicomqc ".center(80, "-"), file=out)
    for line in conclusion_lines(conclusion):
        print(line.text, file=out)
    print(f"dicomqc rules: {ruleset.source}", file=out)
    print(f"dicomqc report: {outputs.report}", file=out)
    if outputs.json is not None:
        print(f"dicomqc json: {outputs.json}", file=out)
    if outputs.junitxml is not None:
        print(f"dicomqc junit xml: {outputs.junitxml}", file=out)
