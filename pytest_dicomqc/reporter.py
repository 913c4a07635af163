"""Controller-only collector of report rows, fed by ``pytest_runtest_logreport``.

It learns which files and results to expect from collection (or, under xdist, from the workers'
collection), takes each file's record from its call-phase report, and once the test loop is over
draws one :class:`~pytest_dicomqc.conclusion.Conclusion` from the rows. The dataset-level results
are reported from it, like tests; the terminal section, junitxml and the workbook format it.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import time
import traceback
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pytest_dicomqc import __version__, junit, wire
from pytest_dicomqc.baseline import BaselineError, BaselineReading
from pytest_dicomqc.cache import Stat
from pytest_dicomqc.collection import LEFT_OUT_OUTPUT, selects_part_of_dataset
from pytest_dicomqc.compare import COMPARED_NAMES, Comparison, compare, sheet_rows, terminal_lines
from pytest_dicomqc.conclusion import Conclusion, Result, Scope, conclude
from pytest_dicomqc.nodes import DicomItem, ResultItem, dataset_nodeid, walk_dataset
from pytest_dicomqc.parts import PartHeader
from pytest_dicomqc.pipeline import value_columns
from pytest_dicomqc.record import (
    STATUS_CRASHED,
    STATUS_FAILED,
    STATUS_NOT_RUN,
    ReportRow,
    Scalar,
    Status,
)
from pytest_dicomqc.session import DicomQCSession
from pytest_dicomqc.shard import Shard, order_key
from pytest_dicomqc.state import ITEM_NAME
from pytest_dicomqc.writers.jsonl import summary_record
from pytest_dicomqc.writers.report import ReportPlan
from pytest_dicomqc.writers.sheets import end_of_run, files_plan, run_tables
from pytest_dicomqc.writers.stream import ReportStream
from pytest_dicomqc.writers.terminal import conclusion_lines

_SUFFIX = "::" + ITEM_NAME
_RESULT_PREFIX = ITEM_NAME + "::"


NOT_SELECTED = "not selected in this run, and the cache holds no result of the file as it is now"
"""Why a file is ``not run`` in a partial run: new or changed since it was checked, or no cache."""
NOT_REACHED = "selected, but the run stopped before its result (-x, --maxfail, Ctrl-C, a signal)"
"""Why a selected file is ``not run``: the run ended first; the cache is not used for it."""


class Reporter:
    """Registered only on the controller (``not hasattr(config, "workerinput")``)."""

    def __init__(self, session: DicomQCSession) -> None:
        self.session = session
        self.config = session.config
        self.settings = session.settings
        self.started = time.time()
        self.expected: dict[str, str] = {}
        """Node id -> dataset-relative path of every dataset file collected and selected."""
        self.results: dict[str, None] = {}
        """Node ids of the dataset-level results collected and selected, in order."""
        self.rows: dict[str, ReportRow] = {}
        """Dataset-relative path -> this run's row."""
        self.stats: dict[str, Stat] = {}
        """Dataset-relative path -> the stat its record is valid for (the cache's key)."""
        self.left_out_by_workers = 0
        self.set_up: set[str] = set()
        """Node ids whose setup has been reported and teardown not yet (pytest's standard
        protocol ran them: see :mod:`~pytest_dicomqc.protocol`)."""
        self.conclusion: Conclusion | None = None
        self.stream: ReportStream | None = None
        self.baseline = BaselineReading(self.settings.baseline) if self.settings.baseline is not None else None
        self.comparison: Comparison | None = None
        self.baseline_error = ""
        self.write_error = ""
        self.written = False
        self.interrupted_by = 0
        """The signal (SIGINT, SIGTERM) that came while the report was written: the write
        finished, then the run ended as interrupted."""
        self.shown_folder: str | None = None
        self.shown_file: Path | None = None
        self.pytest_session: pytest.Session | None = None
        self.prefix = dataset_nodeid(self.config)

    # -- what to expect ---------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.pytest_session = session

    def expect(self, nodeids: Iterable[str]) -> None:
        for nodeid in nodeids:
            if nodeid.startswith(_RESULT_PREFIX) and not nodeid.endswith(_SUFFIX):
                self.results[nodeid] = None
                continue
            relpath = self.relpath_of(nodeid)
            if relpath is not None:
                self.expected.setdefault(nodeid, relpath)

    def relpath_of(self, nodeid: str) -> str | None:
        """Dataset-relative path of a dataset item's node id; ``None`` for other tests."""
        if not nodeid.endswith(_SUFFIX):
            return None
        path = nodeid[: -len(_SUFFIX)]
        if not self.prefix:
            return path
        return path[len(self.prefix) + 1 :] if path.startswith(self.prefix + "/") else None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expect(item.nodeid for item in session.items if isinstance(item, DicomItem | ResultItem))

    # -- while the files run ----------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        """Progress by folder, as pytest shows it by test file: ``data/train/p001 ....  [ 10%]``,
        not one line per file (the terminal takes a file's node id for a test file of its own)."""
        terminal: Any = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None or not terminal.showfspath or terminal.verbosity > 0 or not nodeid.endswith(_SUFFIX):
            return
        path = nodeid[: -len(_SUFFIX)]
        folder = path.rpartition("/")[0] or "."
        if folder != self.shown_folder or terminal.currentfspath != self.shown_file:  # another test between
            terminal.write_fspath_result(folder, "")
            self.shown_folder = folder
        # the terminal's own logstart then writes nothing: it takes the file for the one it shows
        terminal.currentfspath = self.shown_file = self.config.rootpath / path

    @pytest.hookimpl(trylast=True)  # after junitxml's, which :mod:`junit` amends
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup":  # pytest's standard protocol: junitxml closes it at teardown
            self.set_up.add(report.nodeid)
        elif report.when == "teardown":
            self.set_up.discard(report.nodeid)
        if report.passed and report.when != "call":
            return  # setup and teardown that went well
        if report.nodeid.startswith(_RESULT_PREFIX) and not report.nodeid.endswith(_SUFFIX):
            self.name_in_junit(report, report.nodeid[len(_RESULT_PREFIX) :])
            return
        relpath = self.relpath_of(report.nodeid)
        if relpath is None:
            return
        self.name_in_junit(report, relpath)
        carried = wire.take(report)
        if carried is not None:
            record, stat = carried
            # the record's verdict, unless pytest said otherwise (a fixture failed, --runxfail)
            status: Status = STATUS_FAILED if report.failed else record.verdict
            self.rows[relpath] = ReportRow(record.path, status, record)
            if stat is not None:
                self.stats[relpath] = stat
        elif str(report.when) == "???":  # xdist's report for a crashed worker
            self.rows[relpath] = ReportRow(relpath, STATUS_CRASHED, error=_reason(report))
        elif report.failed and relpath not in self.rows:
            self.rows[relpath] = ReportRow(relpath, STATUS_FAILED, error=_reason(report))
        self.expected.setdefault(report.nodeid, relpath)
        self.report_stream().advance(self.rows)

    def report_stream(self) -> ReportStream:
        """Started with the first row, when the files to expect are known (under xdist, from the
        workers' collection): rows stream to a writing process unless the run is partial, whose
        report rows come in another order (the cache's rows of files not run among them)."""
        if self.stream is None:
            partial = bool(self.session.left_out) or selects_part_of_dataset(self.config, self.settings.dataset)
            order = self.report_order()
            self.stream = ReportStream(self.report_plan(len(order)), order, stream=not partial)
        return self.stream

    def report_order(self) -> list[str]:
        """The files in report order: the dataset's order (collection order), whatever order the
        items ran in (``--ff``, ``--nf``, pytest-randomly), so that shards' parts merge."""
        return sorted(self.expected.values(), key=order_key)

    def report_plan(self, files: int) -> ReportPlan:
        settings = self.settings
        shard = settings.shard or Shard(1, 1)
        part = PartHeader(
            shard=shard.index,
            shards=shard.total,
            files=files,
            rules=settings.rules_text,
            strict=settings.strict,
            dataset=_shown(settings.dataset, self.config),
            root=str(settings.dataset),
            plugin=__version__,
            pydicom=metadata.version("pydicom"),
            created=_iso(self.started),
        )
        return ReportPlan(
            settings.report,
            files_plan(settings.ruleset, value_columns(settings.ruleset)),
            json=settings.json,
            expected_files=files,
            records=settings.records,
            part=part if settings.records is not None else None,
        )

    def name_in_junit(self, report: pytest.TestReport, test: str) -> None:
        """Class ``dicomqc``, test ``test``; a test reported by its call phase alone is closed."""
        junit.name(self.config, report, ITEM_NAME, test)
        if report.when == "call" and report.nodeid not in self.set_up:
            junit.close(self.config, report)

    # -- the conclusion and its results ------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Once every file has reported (in this process or from the workers), report the results
        over the whole dataset, like tests: progress, junitxml, ``--lf`` and the exit status
        count them. A stopped run (``-x``, Ctrl-C) reports none: they were not reached."""
        outcome = yield
        if self.selected and not session.shouldfail and not session.shouldstop:
            self.report_results(self.conclude())
        return outcome

    @property
    def selected(self) -> bool:
        """Whether this run is about the dataset at all: a dataset file or result was selected
        (not with ``-k test_model`` in an ML repository, nor with ``--collect-only``)."""
        asked = self.expected or self.results or not self.settings.judged_here  # a shard, even of no file
        return bool(asked) and not self.config.option.collectonly

    def conclude(self, stopped: bool = False) -> Conclusion:
        """Drawn once: when the test loop ends, or at session end if it stopped early, in which
        case no result was reported and none is claimed."""
        if self.conclusion is None:
            shard = self.settings.shard
            if not self.settings.judged_here:
                selected, reason = frozenset[str](), f"judged at merge: this run is shard {shard} of the dataset"
            elif stopped:
                selected, reason = frozenset[str](), "the session stopped early (-x, --maxfail, Ctrl-C)"
            else:
                selected = frozenset(nodeid[len(_RESULT_PREFIX) :] for nodeid in self.results)
                part = selects_part_of_dataset(self.config, self.settings.dataset)
                reason = "only part of the dataset was collected" if part else "deselected (-k, -m, --deselect, --lf)"
            scope = Scope(
                _shown(self.settings.dataset, self.config),
                selected,
                reason,
                self.settings.strict,
                "" if self.settings.judged_here else str(shard),
            )
            self.conclusion = conclude(self.final_rows(), self.settings.ruleset, scope)
        return self.conclusion

    def final_rows(self) -> list[ReportRow]:
        """One row per file of the dataset: this run's, else the cached result of an earlier run
        that is still valid for the file as it is, else ``not run``."""
        partial = (
            self.session.left_out
            or self.left_out_by_workers
            or selects_part_of_dataset(self.config, self.settings.dataset)
            or len(self.rows) < len(self.expected)
        )
        if not partial:
            return [self.rows[relpath] for relpath in self.report_order() if relpath in self.rows]
        selected = set(self.expected.values())  # files meant to run: if they did not, they are `not run`
        # the hooks collection asks for dataset paths: those of the folder holding the dataset
        proxy = self.pytest_session.gethookproxy(self.settings.dataset.parent) if self.pytest_session else None
        files = list(walk_dataset(self.settings.dataset, proxy or self.config.hook, self.config))
        missing = [(path, relpath) for path, relpath in files if relpath not in self.rows and relpath not in selected]
        earlier = dict(zip((relpath for _, relpath in missing), self.session.earlier(missing), strict=True))
        rows = []
        for _, relpath in files:
            row = self.rows.get(relpath)
            if row is None:
                cached = earlier.get(relpath)
                if relpath in selected:
                    row = ReportRow(relpath, STATUS_NOT_RUN, error=NOT_REACHED)
                elif cached is None:
                    row = ReportRow(relpath, STATUS_NOT_RUN, error=NOT_SELECTED)
                else:
                    when = _iso(cached.checked)
                    row = ReportRow(relpath, cached.record.verdict, cached.record, earlier=when)
            rows.append(row)
        seen = {relpath for _, relpath in files}
        gone = [row for relpath, row in self.rows.items() if relpath not in seen]  # deleted during the run
        return sorted(rows + gone, key=lambda row: order_key(row.path)) if gone else rows

    def report_results(self, conclusion: Conclusion) -> None:
        """Each selected result as a test reported by its call phase alone, as dataset files are
        (:mod:`~pytest_dicomqc.protocol`): start, a call report with the outcome (the failure
        text) and the properties junitxml writes, finish."""
        hook = self.config.hook
        for result in conclusion.results:
            nodeid = _RESULT_PREFIX + result.name
            if nodeid not in self.results:
                continue
            location = (ITEM_NAME, None, result.name.replace("::", " "))
            hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
            hook.pytest_runtest_logreport(report=_result_report(result, nodeid, location))
            hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.selected:
            return  # no dataset item was to run (-k test_model, --collect-only)
        with self.session.signals_deferred() as received:
            conclusion = self.conclude(stopped=True)  # unless the test loop ended and concluded
            rows = self.rows
            self.session.remember(
                ((relpath, stat, rows[relpath].record) for relpath, stat in self.stats.items()), self.started
            )
            if session.exitstatus == pytest.ExitCode.INTERRUPTED and self.baseline is not None:
                self.baseline.close()  # no comparison of a run cut short: not worth the wait
                self.baseline = None
            self.comparison = self.compare_with_baseline(conclusion)
            if self.baseline_error:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
            elif self.comparison is not None and self.comparison.exit_status and not session.exitstatus:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a file that passed in the baseline fails now
            try:
                facts = self.run_facts(session.exitstatus)  # the exit status as the comparison left it
                json_summary = summary_record(conclusion, facts) if self.settings.json is not None else None
                changes = sheet_rows(self.comparison) if self.comparison is not None else None
                end = end_of_run(conclusion, self.settings.ruleset, facts, changes=changes, json_summary=json_summary)
                self.report_stream().finish(conclusion.rows, end)
            except OSError as exc:
                where = exc.filename if exc.filename else self.settings.report
                self.write_error = f"cannot write report {where}: {exc.strerror or exc}"
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
            except Exception:  # noqa: BLE001 - a bug: said with its traceback, exit 3, never "a file failed"
                self.write_error = "internal error while writing the report:\n" + traceback.format_exc()
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            else:
                self.written = True
        if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and self.written and not self.settings.judged_here:
            session.exitstatus = pytest.ExitCode.OK  # a shard that holds no file: its empty part is its result
        if received and not self.write_error:
            self.interrupted_by = received[0]
            session.exitstatus = pytest.ExitCode.INTERRUPTED

    def compare_with_baseline(self, conclusion: Conclusion) -> Comparison | None:
        """This run against ``--dicom-baseline``; a baseline that is no report is a usage error,
        said at the end (its read began with the run), and the report is written without it."""
        if self.baseline is None:
            return None
        try:
            old = self.baseline.tables()
        except BaselineError as exc:
            self.baseline_error = f"cannot compare with baseline: {exc}"
            return None
        plan = self.report_stream().plan.files
        return compare(old, run_tables(plan, conclusion.rows, self.settings.ruleset, COMPARED_NAMES))

    def pytest_unconfigure(self) -> None:
        """Nothing of the report outlives the session: not the baseline's read (``--collect-only``,
        the dataset deselected), nor a writing process whose run ended in an error."""
        if self.baseline is not None:
            self.baseline.close()
        if self.stream is not None:
            self.stream.abandon()

    def run_facts(self, exitstatus: int) -> list[tuple[str, Scalar]]:
        workers = getattr(self.config.option, "numprocesses", None)
        settings = self.settings
        outputs: list[tuple[str, Scalar]] = [("report", str(settings.report))]
        outputs += [("json lines", str(settings.json))] if settings.json is not None else []
        outputs += [("baseline", str(settings.baseline))] if settings.baseline is not None else []
        outputs += [("records", str(settings.records))] if settings.records is not None else []
        outputs += [("shard", str(settings.shard))] if settings.shard is not None else []
        now = time.time()
        return [
            ("dataset", str(settings.dataset)),
            ("rules file", settings.ruleset.source),
            *outputs,
            ("started", _iso(self.started)),
            ("finished", _iso(now)),
            ("duration (s)", round(now - self.started, 3)),
            ("pytest arguments", " ".join(self.config.invocation_params.args)),
            ("pytest exit status", int(exitstatus)),
            ("xdist workers", str(workers) if workers else "none"),
            ("pytest-dicomqc", __version__),
            ("pydicom", metadata.version("pydicom")),
            ("pytest", pytest.__version__),
            ("python", sys.version.split()[0]),
        ]

    # -- what the user reads ----------------------------------------------------------------

    def header(self) -> list[str]:
        """The top of a CI log: what is checked, against what, how."""
        ruleset, settings = self.settings.ruleset, self.settings
        workers = settings.workers if settings.workers is not None else "auto"
        cache = "off" if settings.no_cache or getattr(self.config, "cache", None) is None else "on"
        outputs = f"report {settings.report}"
        outputs += f", json {settings.json}" if settings.json is not None else ""
        outputs += f", baseline {settings.baseline}" if settings.baseline is not None else ""
        outputs += f", records {settings.records}" if settings.records is not None else ""
        shard = settings.shard
        if shard is not None:
            outputs += f", shard {shard}" + (f" ({shard.source})" if shard.source else "")
        return [
            f"dicomqc: dataset {settings.dataset}, {outputs}",
            f"dicomqc: rules {ruleset.source} ({len(ruleset.rules)} rules, {len(ruleset.dataset)} dataset checks,"
            f" {len(ruleset.waivers)} waivers), readers {workers}, cache {cache}",
        ]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        conclusion = self.conclusion
        if conclusion is None:
            return
        width = None if terminalreporter.verbosity > 0 else terminalreporter._tw.fullwidth - 1

        def line(text: str, path: bool = False, **markup: bool) -> None:
            """One line, cut to the terminal's width unless it names a file (or ``-v``)."""
            if width is not None and len(text) > width and not path:
                text = text[: width - 1] + "…"
            terminalreporter.write_line(text, **markup)

        terminalreporter.write_sep("-", "dicomqc")
        for shown in conclusion_lines(conclusion):
            line(shown.text, shown.path, **({shown.colour: True} if shown.colour else {}))
        if self.baseline_error:
            line(f"ERROR: {self.baseline_error}", path=True, red=True)
        if self.comparison is not None:
            for text in terminal_lines(self.comparison):
                new_failure = text.startswith("new failure")
                line(text if text.startswith("dicomqc") else f"  {text}", path=True, red=new_failure)
        line(f"dicomqc rules: {self.settings.ruleset.source}", path=True)
        if self.write_error:
            for text in f"ERROR: {self.write_error}".splitlines():
                line(text, path=True, red=True)
        elif self.written:
            line(f"dicomqc report: {self.settings.report}", path=True)
            if self.settings.json is not None:
                line(f"dicomqc json: {self.settings.json}", path=True)
            if self.settings.records is not None:
                line(f"dicomqc records: {self.settings.records}", path=True)
            elif not self.settings.judged_here:
                line("dicomqc: no --dicom-records: this shard's records are not kept for the merge", yellow=True)
        if self.interrupted_by:
            name = signal.Signals(self.interrupted_by).name
            line(f"dicomqc: {name} while writing the report: written whole, run stopped", red=True)


@dataclass(frozen=True)
class _Crash:
    path: str
    lineno: int | None
    message: str


@dataclass(frozen=True)
class ResultFailure:
    """A dataset result's failure text, whole in pytest's failures section and in junitxml; its
    first line is what pytest shows on one line (the short summary, also on CI, where pytest
    would otherwise print a plain text failure whole a second time)."""

    text: str
    reprcrash: _Crash

    def toterminal(self, out: Any) -> None:
        for line in self.text.splitlines():
            out.line(line)

    def __str__(self) -> str:
        return self.text


def _result_report(result: Result, nodeid: str, location: tuple[str, int | None, str]) -> pytest.TestReport:
    now = time.time()
    longrepr: Any = None
    outcome = "passed"
    if result.outcome == "failed":
        outcome, longrepr = "failed", ResultFailure(result.text, _Crash(ITEM_NAME, None, result.summary))
    elif result.outcome == "skipped":
        outcome, longrepr = "skipped", (ITEM_NAME, None, f"{result.status}: {result.message}")
    return pytest.TestReport(
        nodeid=nodeid,
        location=location,
        keywords={ITEM_NAME: 1},
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=longrepr,
        when="call",
        start=now,
        stop=now,
        user_properties=[("dicomqc_status", result.status), ("dicomqc_message", result.message)],
    )


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def _shown(dataset: Path, config: pytest.Config) -> str:
    """The dataset folder as the user gave it, relative to where pytest runs when it is below."""
    try:
        return f"{dataset.relative_to(config.invocation_params.dir).as_posix()}/"
    except ValueError:
        return f"{dataset}/"


def _reason(report: pytest.TestReport) -> str:
    """What went wrong, in one line: the crash message, else the report text's last line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    text = str(report.longrepr or "").strip()
    return text.splitlines()[-1] if text else ""


class XdistHooks:
    """Hooks that exist only with pytest-xdist: the controller learns node ids from workers."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.reporter.expect(ids)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        # every worker collects the whole dataset: all deselect the same files
        left_out = getattr(node, "workeroutput", {}).get(LEFT_OUT_OUTPUT, 0)
        self.reporter.left_out_by_workers = max(self.reporter.left_out_by_workers, int(left_out))
