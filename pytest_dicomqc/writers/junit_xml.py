"""JUnit XML of a merge (``merge --junitxml``), shaped as pytest's junitxml names dataset results.

One test case per file (class ``dicomqc``, test the dataset-relative path) and one per dataset
result (test ``dataset::<check id>``, with its status and message as properties), as a single run
writes them (:mod:`pytest_dicomqc.junit`). Test cases are written as the rows come, to a temporary
file; the totals, which JUnit puts first, are known at the end.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import tempfile
from collections.abc import Iterable
from typing import IO
from xml.sax.saxutils import escape, quoteattr

from pytest_dicomqc.conclusion import Conclusion, Result
from pytest_dicomqc.record import (
    ITEM_NAME,
    STATUS_CRASHED,
    STATUS_FAILED,
    STATUS_NOT_RUN,
    STATUS_SKIPPED,
    STATUS_WAIVED,
    ReportRow,
    failure_text,
    skip_reason,
    waived_reason,
)
from pytest_dicomqc.writers.rows import clean_text


class JunitFile:
    """Test cases as they come, then :meth:`finish` writes the whole file to ``target``."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.cases: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish
        self.counts = {"tests": 0, "failures": 0, "skipped": 0}

    def add(self, rows: Iterable[ReportRow]) -> None:
        self.cases.write("".join(self._file_case(row) for row in rows).encode("utf-8"))

    def _file_case(self, row: ReportRow) -> str:
        record = row.record
        inner = ""
        if row.status in (STATUS_FAILED, STATUS_CRASHED):
            text = failure_text(record) if record is not None and row.status == STATUS_FAILED else row.error
            inner = self._failure(text or row.status)
        elif row.status == STATUS_SKIPPED and record is not None:
            inner = self._skipped("pytest.skip", f"{row.path}: {skip_reason(record)}")
        elif row.status == STATUS_WAIVED and record is not None:
            inner = self._skipped("pytest.xfail", waived_reason(record))
        elif row.status == STATUS_NOT_RUN:
            inner = self._skipped("pytest.skip", f"{row.path}: not run")
        return self._case(row.path, inner)

    def _case(self, name: str, inner: str, properties: str = "") -> str:
        self.counts["tests"] += 1
        head = f'<testcase classname={quoteattr(ITEM_NAME)} name={_attribute(name)} time="0.000"'
        body = properties + inner
        return f"{head}>{body}</testcase>\n" if body else f"{head} />\n"

    def _failure(self, text: str) -> str:
        self.counts["failures"] += 1
        message = text.splitlines()[0] if text else ""
        return f"<failure message={_attribute(message)}>{_text(text)}</failure>"

    def _skipped(self, kind: str, message: str) -> str:
        self.counts["skipped"] += 1
        return f"<skipped type={quoteattr(kind)} message={_attribute(message)}>{_text(message)}</skipped>"

    def finish(self, conclusion: Conclusion) -> None:
        self.cases.write("".join(self._result_case(result) for result in conclusion.results).encode("utf-8"))
        counts = self.counts
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        host = quoteattr(socket.gethostname())
        self.target.write(
            '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
            f'<testsuite name="pytest" errors="0" failures="{counts["failures"]}" skipped="{counts["skipped"]}"'
            f' tests="{counts["tests"]}" time="0.000" timestamp="{stamp}" hostname={host}>\n'.encode()
        )
        self.cases.seek(0)
        shutil.copyfileobj(self.cases, self.target)
        self.cases.close()
        self.target.write(b"</testsuite></testsuites>\n")

    def _result_case(self, result: Result) -> str:
        properties = (
            "<properties>"
            f'<property name="dicomqc_status" value={_attribute(result.status)} />'
            f'<property name="dicomqc_message" value={_attribute(result.message)} />'
            "</properties>"
        )
        inner = ""
        if result.outcome == "failed":
            inner = self._failure(result.text)
        elif result.outcome == "skipped":
            inner = self._skipped("pytest.skip", f"{result.status}: {result.message}")
        return self._case(result.name, inner, properties)


def _attribute(text: str) -> str:
    return quoteattr(clean_text(text))


def _text(text: str) -> str:
    return escape(clean_text(text))
