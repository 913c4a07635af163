"""Controller-only collector of report rows, fed by ``pytest_runtest_logreport``.

It learns which files to expect from collection (or, under xdist, from the workers' collection
reports), takes each file's record from the call-phase report, and at session end writes one
row per expected file: files that never reported are ``not run``, crashed workers ``crashed``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from importlib import metadata
from typing import Any

import pytest

from pytest_dicomqc import __version__, reading
from pytest_dicomqc.cache import Stat
from pytest_dicomqc.collection import selects_part_of_dataset
from pytest_dicomqc.dataset_checks import DatasetVerdict, judge, waivers_used
from pytest_dicomqc.nodes import ITEM_NAME, DicomItem, dataset_nodeid
from pytest_dicomqc.pipeline import value_columns
from pytest_dicomqc.record import (
    KIND_DICOM,
    STATUS_CRASHED,
    STATUS_FAILED,
    STATUS_NOT_RUN,
    STATUS_WAIVED,
    STATUSES,
    FileRecord,
    ReportRow,
    Scalar,
)
from pytest_dicomqc.settings import Settings
from pytest_dicomqc.verdicts import (
    ACTIVE,
    EXPIRED,
    STALE,
    ThresholdVerdict,
    WaiverUse,
    threshold_verdicts,
    waiver_uses,
)
from pytest_dicomqc.writers.excel import Verdicts, write_workbook

WIRE_ATTRIBUTE = "dicomqc_record"
COLLECTED_KEY = pytest.StashKey[int]()
LEFT_OUT_KEY = pytest.StashKey[int]()
LEFT_OUT_OUTPUT = "dicomqc_left_out"
"""Key of an xdist worker's ``workeroutput``: dataset files it collected but did not keep."""
STAT_ATTRIBUTE = "dicomqc_stat"
_SUFFIX = "::" + ITEM_NAME


class Reporter:
    """Registered only on the controller (``not hasattr(config, "workerinput")``)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.expected: dict[str, str] = {}
        self.rows: dict[str, ReportRow] = {}
        self.started = time.time()
        self.write_error = ""
        self.written = False
        self.stats: dict[str, Stat] = {}
        self.thresholds: list[ThresholdVerdict] = []
        self.dataset: list[DatasetVerdict] = []
        self.partial = False
        self.left_out_by_workers = 0
        self.waivers: list[WaiverUse] = []
        self.prefix = dataset_nodeid(config)

    def expect(self, nodeids: list[str]) -> None:
        for nodeid in nodeids:
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
        self.expect([item.nodeid for item in session.items if isinstance(item, DicomItem)])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.passed and report.when != "call":
            return  # setup and teardown that went well: two of every item's three reports
        relpath = self.relpath_of(report.nodeid)
        if relpath is None:
            return
        wire = getattr(report, WIRE_ATTRIBUTE, None)
        if wire is not None:
            delattr(report, WIRE_ATTRIBUTE)  # the terminal keeps every report: keep one copy of each record
            record = FileRecord.from_wire(wire)
            status = STATUS_WAIVED if hasattr(report, "wasxfail") else report.outcome
            self.rows[report.nodeid] = ReportRow(record.path, status, record)
            stat = getattr(report, STAT_ATTRIBUTE, None)
            if stat is not None:
                self.stats[report.nodeid] = (int(stat[0]), int(stat[1]), int(stat[2]))
        elif str(report.when) == "???":  # xdist's report for a crashed worker
            self.rows[report.nodeid] = ReportRow(relpath, STATUS_CRASHED, error=_reason(report))
        elif report.failed and report.nodeid not in self.rows:
            self.rows[report.nodeid] = ReportRow(relpath, STATUS_FAILED, error=_reason(report))
        self.expected.setdefault(report.nodeid, relpath)

    def final_rows(self) -> list[ReportRow]:
        return [
            self.rows.get(nodeid) or ReportRow(relpath, STATUS_NOT_RUN) for nodeid, relpath in self.expected.items()
        ]

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes: the rule verdicts are results too
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.rows:
            return  # no dataset item ran (-m "not dicomqc", --collect-only, deselected)
        rows = self.final_rows()
        records = [row.record for row in rows if row.record is not None]
        # Dataset-level verdicts need every file: after -k, --lf, -x or a crash they would lie.
        left_out = self.config.stash.get(LEFT_OUT_KEY, 0) + self.left_out_by_workers
        complete = (
            len(records) == len(rows)
            and not left_out
            and not selects_part_of_dataset(self.config, self.settings.dataset)
        )
        self.partial = not complete
        checks = [c for c in self.settings.ruleset.dataset if not self.deselected(f"dataset::{c.id}")]
        if complete:
            thresholds = threshold_verdicts(self.settings.ruleset, records)
            self.thresholds = [t for t in thresholds if not self.deselected(f"rule::{t.rule_id}")]
            keys = ((record.path, record.dataset) for record in records if record.kind == KIND_DICOM)
            self.dataset = judge(checks, keys, self.settings.strict, self.settings.ruleset.waivers)
            self.report_verdicts(session)
        # a waiver can be called stale only when everything it could waive was judged
        everything = complete and len(checks) == len(self.settings.ruleset.dataset)
        self.waivers = waiver_uses(self.settings.ruleset, records, everything, waivers_used(self.dataset))
        reading.remember(
            self.config,
            self.settings,
            (
                (self.settings.dataset / row.path, self.stats[nodeid], row.record)
                for nodeid, row in self.rows.items()
                if row.record is not None and nodeid in self.stats
            ),
        )
        try:
            write_workbook(
                self.settings.report,
                rows,
                self.settings.ruleset,
                value_columns(self.settings.ruleset),
                Verdicts(self.thresholds, self.waivers, self.run_facts(session.exitstatus), self.dataset),
            )
        except OSError as exc:
            self.write_error = f"cannot write report {self.settings.report}: {exc.strerror or exc}"
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        else:
            self.written = True

    def deselected(self, name: str) -> bool:
        """``--deselect dicomqc::dataset::<id>`` (or ``dicomqc::rule::<id>``) leaves that verdict out."""
        return f"{ITEM_NAME}::{name}".startswith(tuple(self.config.getoption("deselect", None) or ()))

    def report_verdicts(self, session: pytest.Session) -> None:
        """Each ``max_failing`` rule and each dataset check is a result of its own, like a test:
        ``dicomqc::rule::<id>`` and ``dicomqc::dataset::<id>``."""
        for threshold in self.thresholds:
            status = "passed" if threshold.passed else "failed"
            self.report_result(session, f"rule::{threshold.rule_id}", status, threshold.message, threshold.message)
        for verdict in self.dataset:
            self.report_result(
                session, f"dataset::{verdict.check.id}", verdict.status, verdict.message, verdict.details
            )

    def report_result(self, session: pytest.Session, name: str, status: str, message: str, details: str) -> None:
        """A call report (the outcome; ``details`` is the failure text), then a teardown report
        that carries the status and message as properties: junitxml writes a test case's
        properties when its teardown is reported, so a warning is visible there too."""
        now = time.time()
        properties = [("dicomqc_status", status), ("dicomqc_message", message)]
        failed = status == "failed"
        for when in ("call", "teardown"):
            report = pytest.TestReport(
                nodeid=f"{ITEM_NAME}::{name}",
                location=(ITEM_NAME, None, name.replace("::", " ")),
                keywords={ITEM_NAME: 1},
                outcome="failed" if failed and when == "call" else "passed",
                longrepr=details if failed and when == "call" else None,
                when=when,
                start=now,
                stop=now,
                user_properties=properties,
            )
            self.config.hook.pytest_runtest_logreport(report=report)
        if failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def run_facts(self, exitstatus: int) -> list[tuple[str, Scalar]]:
        workers = getattr(self.config.option, "numprocesses", None)
        return [
            ("dataset", str(self.settings.dataset)),
            ("rules file", self.settings.ruleset.source),
            ("report", str(self.settings.report)),
            ("started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))),
            ("duration (s)", round(time.time() - self.started, 3)),
            ("pytest arguments", " ".join(self.config.invocation_params.args)),
            ("pytest exit status", int(exitstatus)),
            ("xdist workers", str(workers) if workers else "none"),
            ("pytest-dicomqc", __version__),
            ("pydicom", metadata.version("pydicom")),
            ("pytest", pytest.__version__),
            ("python", sys.version.split()[0]),
        ]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        rows = self.final_rows()
        counts = Counter(row.status for row in rows)
        summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        warned = Counter(rule for row in rows if row.record is not None for rule in row.record.warned_rules)
        files_warned = sum(1 for row in rows if row.record is not None and row.record.warned_rules)
        if files_warned:
            per_rule = ", ".join(f"{rule}: {count}" for rule, count in sorted(warned.items()))
            summary += f"; {files_warned} with rule warnings ({per_rule})"
        terminalreporter.write_sep("-", "dicomqc")
        terminalreporter.write_line(f"dicomqc: {_files(len(rows))}: {summary}")
        terminalreporter.write_line(f"dicomqc rules: {self.settings.ruleset.source}")
        for verdict in self.thresholds:
            terminalreporter.write_line(f"dicomqc rule {verdict.rule_id}: {verdict.message}", red=not verdict.passed)
        for dataset in self.dataset:
            markup = {"red": True} if dataset.status == "failed" else {"yellow": True} if dataset.findings else {}
            terminalreporter.write_line(
                f"dicomqc dataset {dataset.check.id} {dataset.status}: {dataset.message}", **markup
            )
        if self.partial and self.settings.ruleset.dataset:
            terminalreporter.write_line(
                "dicomqc dataset checks not run: they need every file (partial run)", yellow=True
            )
        for use in self.waivers:
            if use.status != ACTIVE:
                waiver = use.waiver
                what = {
                    EXPIRED: f"expired on {waiver.expires}",
                    STALE: "matched no finding (stale)",
                }.get(use.status, "waived nothing in this partial run")
                where = f"{waiver.source}:{waiver.line}"
                terminalreporter.write_line(f"dicomqc waiver {waiver.id} ({where}) {what}", yellow=True)
        if self.write_error:
            terminalreporter.write_line(f"ERROR: {self.write_error}", red=True)
        elif self.written:
            terminalreporter.write_line(f"dicomqc report: {self.settings.report}")


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


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
