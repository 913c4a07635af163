"""What a run concludes about the dataset, computed once from every file's row.

Every number any output shows (terminal, junitxml, the workbook's sheets, the exit status)
comes from the :class:`Conclusion` that :func:`conclude` returns: outputs format it and never
count for themselves, so they cannot disagree. Pure: rows in, conclusion out.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from pytest_dicomqc.dataset_checks import DatasetVerdict, involvement, judge, waivers_used
from pytest_dicomqc.discover import LFS_POINTER_NOTE, is_lfs_pointer_note
from pytest_dicomqc.record import (
    FAIL,
    KIND_DICOM,
    KIND_NON_DICOM,
    KIND_UNREADABLE,
    NOT_APPLICABLE,
    PASS,
    STATUS_CRASHED,
    STATUS_FAILED,
    STATUS_NOT_RUN,
    STATUSES,
    WAIVED,
    WARN,
    FileRecord,
    ReportRow,
    Status,
)
from pytest_dicomqc.rules.model import Rule, RuleSet, Waiver
from pytest_dicomqc.series import SERIES_VALUES, SeriesTally, tally_series

WaiverStatus = Literal["active", "expired", "stale", "unused in this partial run"]
ACTIVE, EXPIRED, STALE, UNUSED = get_args(WaiverStatus)

Verdict = Literal["PASSED", "FAILED", "INCOMPLETE"]
Outcome = Literal["passed", "failed", "skipped"]
"""What pytest reports for a dataset-level result."""
ResultStatus = Literal["passed", "failed", "warning", "waived", "empty", "not judged", "not run"]
"""A dataset result in words: a dataset check's own status, or why it has none."""
NOT_JUDGED: ResultStatus = "not judged"
NOT_RUN: ResultStatus = "not run"
WARNINGS: tuple[ResultStatus, ...] = ("warning", "empty")
"""Statuses that do not fail the run but are shown as warnings (``empty`` is reported skipped)."""

CONCLUDED_VALUES = (*SERIES_VALUES, "notes")
"""The values of a file that :func:`conclude` reads: all a merge keeps of them (:meth:`ReportRow.from_wire`)."""
UNREADABLE_FILE = "unreadable file"
"""How a file of kind ``unreadable`` is counted in words (``2 unreadable files``)."""
DICOM_FILES = "dicom-files"
"""Name of the result that fails a run with fewer DICOM files than ``min_dicom_files``."""


@dataclass(frozen=True)
class Scope:
    """How much of the dataset the conclusion rests on, and which results were asked for."""

    dataset: str
    """The dataset folder as the user knows it (``data/``), for messages."""
    selected: frozenset[str] | None = None
    """Result names (:attr:`Result.name`) collected and selected in this run; ``None``: all of them."""
    unselected_reason: str = "deselected"
    strict: bool = False
    shard: str = ""
    """``K/N`` when the run is one shard of several: its dataset results are judged at merge."""

    def asked(self, name: str) -> bool:
        return self.selected is None or name in self.selected


@dataclass(frozen=True)
class RuleTally:
    """One rule over every file: the Summary row and the threshold verdict read the same numbers."""

    rule: Rule
    passed: int = 0
    failed: int = 0
    warned: int = 0
    waived: int = 0
    not_applicable: int = 0
    unchecked: int = 0
    """Files with no record: not run, crashed."""

    @property
    def applicable(self) -> int:
        return self.passed + self.failed + self.warned + self.waived

    @property
    def failing(self) -> int:
        """Files the rule did not hold for (a waived finding is accepted, not failing)."""
        return self.failed + self.warned


@dataclass(frozen=True)
class ThresholdVerdict:
    """``max_failing`` of one rule, judged over every file it applied to."""

    tally: RuleTally
    strict: bool = False
    """``--dicom-strict``: a threshold over no file fails, as an empty dataset check does."""

    @property
    def rule_id(self) -> str:
        return self.tally.rule.id

    @property
    def status(self) -> ResultStatus:
        """passed, failed, or empty: the rule applied to no file, so its threshold checked nothing."""
        threshold = self.tally.rule.max_failing
        assert threshold is not None
        if not self.tally.applicable:
            return "failed" if self.strict else "empty"
        return "passed" if threshold.allows(self.tally.failing, self.tally.applicable) else "failed"

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    @property
    def message(self) -> str:
        tally, threshold = self.tally, self.tally.rule.max_failing
        assert threshold is not None
        if not tally.applicable:
            return "no file took part: the rule applied to no file"
        share = f" ({100 * tally.failing / tally.applicable:.1f}%)"
        verb = "within" if self.passed else "above"
        return (
            f"{tally.failing} of {tally.applicable} applicable files fail rule {self.rule_id!r}{share}, "
            f"{verb} max_failing {threshold.text}"
        )


@dataclass(frozen=True)
class MinimumVerdict:
    """``min_dicom_files``: a run that checked (almost) no DICOM file proves nothing."""

    dicom: int
    required: int
    others: tuple[tuple[str, int], ...]
    """What the other files were, most common first: ("Git LFS pointer …", 3), ("text file", 1)."""
    dataset: str

    @property
    def passed(self) -> bool:
        return self.dicom >= self.required

    @property
    def message(self) -> str:
        files = "1 DICOM file" if self.dicom == 1 else f"{self.dicom:,} DICOM files"
        text = f"{files} checked in {self.dataset}"
        if self.others:
            text += ": " + ", ".join(f"{count:,} {_plural(what, count)}" for what, count in self.others)
        return f"{text}; at least {self.required:,} required"


@dataclass(frozen=True)
class WaiverUse:
    waiver: Waiver
    status: WaiverStatus
    files: int
    """Files it waived a rule for, plus dataset problems it accepted."""


@dataclass(frozen=True)
class Result:
    """A verdict over the dataset, reported like a test: ``dicomqc::<name>``."""

    name: str
    """``dicom-files``, ``dataset::<check id>`` or ``rule::<rule id>``."""
    outcome: Outcome
    status: ResultStatus
    message: str
    details: str = ""
    """The failure text (every problem); the message when empty."""

    @property
    def text(self) -> str:
        return self.details or self.message

    @property
    def summary(self) -> str:
        """The failure's first line: how much is wrong, not what (the details say that)."""
        return self.text.splitlines()[0].rstrip(":")


@dataclass(frozen=True)
class Conclusion:
    rows: tuple[ReportRow, ...]
    statuses: dict[Status, int]
    kinds: dict[str, int]
    tallies: tuple[RuleTally, ...]
    thresholds: tuple[ThresholdVerdict, ...]
    dataset: tuple[DatasetVerdict, ...]
    minimum: MinimumVerdict | None
    results: tuple[Result, ...]
    """Every dataset-level result the ruleset defines, in report order, judged or not."""
    waivers: tuple[WaiverUse, ...]
    named: dict[str, list[str]]
    """Per file, the ids of the dataset checks that named it in a problem no waiver accepted."""
    complete: bool
    """Every file has a record, from this run or an earlier one: the selected dataset results were judged."""
    earlier: int
    """Rows whose record comes from an earlier run (not selected in this one)."""
    failed_without_a_rule: tuple[tuple[str, int], ...] = ()
    """Files that failed with no rule failing, by why (``unreadable file``…), most first: the
    rule tallies do not account for them."""
    earlier_runs: tuple[str, ...] = ()
    """The times of the earlier runs those rows come from, distinct, oldest first."""
    series: tuple[SeriesTally, ...] = ()
    """The rows by series (SeriesInstanceUID in a folder), in the order their first file comes."""
    shard: str = ""
    """``K/N`` of a shard's run (:attr:`Scope.shard`); empty for a whole run or a merge."""

    @functools.cached_property
    def flagged(self) -> dict[str, str]:
        """Files named by a dataset problem no waiver accepted, with the worst status among the
        checks that named them (``failed`` or ``warning``): the Files sheet flags them."""
        flags: dict[str, str] = {}
        for verdict in self.dataset:
            status = verdict.status
            if status not in ("failed", "warning"):
                continue
            for finding in verdict.findings:
                if not finding.waiver:
                    for path in finding.files:
                        if flags.get(path) != "failed":
                            flags[path] = status
        return flags

    @property
    def failed_without_a_rule_count(self) -> int:
        return sum(count for _, count in self.failed_without_a_rule)

    @property
    def failed_without_a_rule_why(self) -> str:
        """``2 unreadable files, 1 crashed file (worker died)``; empty when every failed file
        failed a rule."""
        return ", ".join(f"{count:,} {_plural(what, count)}" for what, count in self.failed_without_a_rule)

    @property
    def failed_without_a_rule_text(self) -> str:
        """``3 files failed with no rule failing: 2 unreadable files, …``, or empty."""
        if not self.failed_without_a_rule:
            return ""
        return (
            f"{_files(self.failed_without_a_rule_count)} failed with no rule failing: {self.failed_without_a_rule_why}"
        )

    @property
    def earlier_text(self) -> str:
        """``3 files shown with their results from earlier runs`` (a partial run); empty for a full run."""
        if not self.earlier:
            return ""
        return f"{_files(self.earlier)} shown with their results from {_count(len(self.earlier_runs), 'earlier run')}"

    @property
    def earlier_source(self) -> str:
        """Whose results those files show: ``the run of <time>`` or ``2 runs, <time> to <time>``."""
        runs = self.earlier_runs
        if len(runs) <= 1:
            return f"the run of {runs[0]}" if runs else ""
        return f"{len(runs)} runs, {runs[0]} to {runs[-1]}"

    @property
    def partial_run_text(self) -> str:
        """The same in one sentence, for the Summary sheet; empty for a full run."""
        if not self.earlier:
            return ""
        return (
            f"{_files(self.earlier)} shown with their results from {self.earlier_source} (the report's checked column)"
        )

    @property
    def verdict(self) -> Verdict:
        return self._judgement[0]

    @property
    def headline(self) -> str:
        """The verdict in words, for the top of the Summary sheet and the terminal."""
        return self._judgement[1]

    @functools.cached_property  # computed once: the verdict is read by every output
    def _judgement(self) -> tuple[Verdict, str]:
        verdict, headline = self._files_and_results()
        if self.shard:
            headline = headline.replace("every check held", "every file check held")
            headline += f" (shard {self.shard}; dataset results are judged at merge)"
        return verdict, headline

    def _files_and_results(self) -> tuple[Verdict, str]:
        failed = [row for row in self.rows if row.status in (STATUS_FAILED, STATUS_CRASHED)]
        failing = [result for result in self.results if result.status == "failed"]
        problems = []
        if failed:
            earlier = sum(1 for row in failed if row.earlier)
            problems.append(f"{_files(len(failed))} failed" + (f" ({earlier:,} in an earlier run)" if earlier else ""))
        if failing:
            problems.append(f"{_count(len(failing), 'dataset result')} failed")
        gaps = [f"{_files(self.statuses[STATUS_NOT_RUN])} not checked"] if self.statuses[STATUS_NOT_RUN] else []
        for status in () if self.shard else (NOT_JUDGED, NOT_RUN):  # a shard judges no dataset result
            unjudged = sum(1 for result in self.results if result.status == status)
            gaps += [f"{_count(unjudged, 'dataset result')} {status}"] if unjudged else []
        if problems:  # what this run could not say comes after what it found
            return "FAILED", "FAILED: " + "; ".join(problems + gaps)
        if gaps:
            return "INCOMPLETE", "INCOMPLETE: " + "; ".join(gaps)
        warnings = [f"{result.name} {result.status}" for result in self.results if result.status in WARNINGS]
        warnings += [_warned(tally) for tally in self.tallies if tally.warned]
        if warnings:
            return "PASSED", f"PASSED with {_count(len(warnings), 'warning')}: {', '.join(warnings)}"
        return "PASSED", f"PASSED: {_files(len(self.rows))}, every check held"


def conclude(rows: Sequence[ReportRow], ruleset: RuleSet, scope: Scope) -> Conclusion:
    """The one computation every output formats."""
    records = [row.record for row in rows if row.record is not None]
    complete = len(records) == len(rows)
    tallies = tuple(_tally(rule, rows) for rule in ruleset.rules)
    thresholds = tuple(ThresholdVerdict(tally, scope.strict) for tally in tallies if tally.rule.max_failing is not None)
    dataset: tuple[DatasetVerdict, ...] = ()
    minimum = None
    if complete:
        keys = ((record.path, record.dataset) for record in records if record.kind == KIND_DICOM)
        checks = [check for check in ruleset.dataset if scope.asked(f"dataset::{check.id}")]
        dataset = tuple(judge(checks, keys, scope.strict, ruleset.waivers))
        minimum = _minimum(records, ruleset.min_dicom_files, scope.dataset)
    results = _results(ruleset, scope, complete, thresholds, dataset, minimum, len(rows) - len(records))
    named = involvement(dataset)
    return Conclusion(
        rows=tuple(rows),
        statuses={status: sum(1 for row in rows if row.status == status) for status in STATUSES},
        kinds=dict(sorted(Counter(record.kind for record in records).items())),
        tallies=tallies,
        thresholds=thresholds,
        dataset=dataset,
        minimum=minimum,
        results=results,
        # a waiver can be called stale only when everything it could waive was judged
        waivers=_waiver_uses(
            ruleset,
            records,
            complete and not scope.shard and len(dataset) == len(ruleset.dataset),
            waivers_used(dataset),
        ),
        named=named,
        complete=complete,
        earlier=sum(1 for row in rows if row.earlier),
        failed_without_a_rule=_failed_without_a_rule(rows),
        earlier_runs=tuple(sorted({row.earlier for row in rows if row.earlier})),
        series=tally_series(rows, named),
        shard=scope.shard,
    )


def _tally(rule: Rule, rows: Sequence[ReportRow]) -> RuleTally:
    cells = Counter(row.record.results.get(rule.id) if row.record is not None else None for row in rows)
    return RuleTally(
        rule,
        passed=cells[PASS],
        failed=cells[FAIL],
        warned=cells[WARN],
        waived=cells[WAIVED],
        not_applicable=cells[NOT_APPLICABLE],
        unchecked=cells[None],
    )


def _failed_without_a_rule(rows: Sequence[ReportRow]) -> tuple[tuple[str, int], ...]:
    why = Counter(
        _why_failed(row)
        for row in rows
        if row.status in (STATUS_FAILED, STATUS_CRASHED) and not (row.record is not None and row.record.failed_rules)
    )
    return tuple(why.most_common())


def _why_failed(row: ReportRow) -> str:
    """Why a file failed that failed no rule, as a noun :func:`_plural` can count."""
    record = row.record
    if row.status == STATUS_CRASHED:
        return "crashed file (worker died)"
    if record is None:
        return "file (failed before it was read)"
    if record.verdict != STATUS_FAILED:  # the file passed its checks; pytest failed its item
        return "file (failed by pytest: a hook, a fixture, --runxfail)"
    if record.kind == KIND_NON_DICOM:
        return (
            LFS_POINTER_NOTE if is_lfs_pointer_note(record.values.get("notes")) else "non-DICOM file (non_dicom: fail)"
        )
    return UNREADABLE_FILE if record.kind == KIND_UNREADABLE else "DICOM file (read error)"


def _minimum(records: Sequence[FileRecord], required: int, dataset: str) -> MinimumVerdict:
    others: Counter[str] = Counter()
    for record in records:
        if record.kind == KIND_NON_DICOM:
            note = record.values.get("notes")
            others[LFS_POINTER_NOTE if is_lfs_pointer_note(note) else str(note or "non-DICOM file")] += 1
        elif record.kind == KIND_UNREADABLE:
            others[UNREADABLE_FILE] += 1
    dicom = sum(1 for record in records if record.kind == KIND_DICOM)
    return MinimumVerdict(dicom, required, tuple(others.most_common()), dataset)


def _results(
    ruleset: RuleSet,
    scope: Scope,
    complete: bool,
    thresholds: Sequence[ThresholdVerdict],
    dataset: Sequence[DatasetVerdict],
    minimum: MinimumVerdict | None,
    unchecked: int,
) -> tuple[Result, ...]:
    """Each result as pytest reports it: judged, or skipped with the reason it was not."""
    not_judged = f"{_files(unchecked)} of the dataset not checked in this run nor in the cache"
    judged: dict[str, Result] = {}
    if minimum is not None:
        outcome: Outcome = "passed" if minimum.passed else "failed"
        judged[DICOM_FILES] = Result(
            DICOM_FILES,
            outcome,
            "passed" if minimum.passed else "failed",
            minimum.message,
            _details(minimum.message, outcome),
        )
    for verdict in dataset:
        outcome = _OUTCOMES[verdict.status]
        judged[f"dataset::{verdict.check.id}"] = Result(
            f"dataset::{verdict.check.id}",
            outcome,
            verdict.status,
            verdict.message,
            (verdict.details if verdict.findings else verdict.message) if outcome == "failed" else "",
        )
    for threshold in thresholds:
        outcome = _OUTCOMES[threshold.status]
        judged[f"rule::{threshold.rule_id}"] = Result(
            f"rule::{threshold.rule_id}",
            outcome,
            threshold.status,
            threshold.message,
            _details(threshold.message, outcome),
        )
    results = []
    for name in result_names(ruleset):
        if not scope.asked(name):
            results.append(Result(name, "skipped", NOT_RUN, scope.unselected_reason))
        elif complete:
            results.append(judged[name])
        else:
            results.append(Result(name, "skipped", NOT_JUDGED, not_judged))
    return tuple(results)


_OUTCOMES: dict[ResultStatus, Outcome] = {
    "passed": "passed",
    "warning": "passed",
    "waived": "passed",
    "failed": "failed",
    "empty": "skipped",  # no file took part: it checked nothing, pytest's word for that is skipped
}
"""What pytest reports for a judged result of each status."""


def result_names(ruleset: RuleSet) -> list[str]:
    """Every dataset-level result of a ruleset, in the order they are collected and reported."""
    names = [DICOM_FILES]
    names += [f"dataset::{check.id}" for check in ruleset.dataset]
    names += [f"rule::{rule.id}" for rule in ruleset.rules if rule.max_failing is not None]
    return names


def _details(message: str, outcome: Outcome) -> str:
    return message if outcome == "failed" else ""


def _waiver_uses(
    ruleset: RuleSet, records: Sequence[FileRecord], complete: bool, dataset_uses: Counter[str]
) -> tuple[WaiverUse, ...]:
    """How each waiver was used. Only a run over the whole dataset (``complete``) can call one
    stale: in a partial run (``-k``, ``--lf``, ``-x``…) it may just not have met its files."""
    used = Counter(waiver_id for record in records for waiver_id in record.waivers)
    used.update(dataset_uses)
    uses = []
    for waiver in ruleset.waivers:
        status: WaiverStatus = (
            EXPIRED if waiver.expired else ACTIVE if used[waiver.id] else STALE if complete else UNUSED
        )
        uses.append(WaiverUse(waiver, status, used[waiver.id]))
    return tuple(uses)


def _warned(tally: RuleTally) -> str:
    """A rule that warned, for the headline: a ``max_failing`` rule's files failed it, within bounds."""
    threshold = tally.rule.max_failing
    if threshold is None:
        return f"rule::{tally.rule.id} warned on {_files(tally.warned)}"
    return f"rule::{tally.rule.id} failed on {_files(tally.warned)}, within max_failing {threshold.text}"


def _plural(what: str, count: int) -> str:
    """``text file`` -> ``text files``, ``Git LFS pointer (…)`` -> ``Git LFS pointers (…)``."""
    noun, bracket, rest = what.partition(" (")
    if count == 1 or noun.endswith(("s", "media")) or not noun[-1:].isalpha():
        return what
    return f"{noun}s{bracket}{rest}"


def _count(count: int, noun: str) -> str:
    return f"1 {noun}" if count == 1 else f"{count:,} {noun}s"


def _files(count: int) -> str:
    return _count(count, "file")
