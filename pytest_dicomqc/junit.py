"""How the dataset's results read in JUnit XML views (GitLab, Jenkins, Azure).

pytest's junitxml turns a node id into a class name by its path with dots, so
``data/CT_small.dcm::dicomqc`` shows as package ``data.CT_small``, class ``dcm``, test ``dicomqc``.
Each dataset result is named here instead: class ``dicomqc``, test the dataset-relative path (or
``dataset::<check>``), and a skip reads ``labels.csv: non-dicom: text file`` (no line number: a
data file has none, where pytest would write ``None``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

try:  # pytest's junitxml internals: if they ever change, test cases keep pytest's own names
    from _pytest.junitxml import bin_xml_escape, xml_key
except ImportError:  # pragma: no cover
    xml_key = None  # type: ignore[assignment]


def _logxml(config: pytest.Config) -> Any:
    """pytest's junitxml plugin object of this run, ``None`` without ``--junitxml``."""
    return None if xml_key is None else config.stash.get(xml_key, None)


def name(config: pytest.Config, report: pytest.TestReport, classname: str, test: str) -> None:
    """Called after junitxml has taken the report (``--junitxml`` only)."""
    xml = _logxml(config)
    if xml is None:
        return
    reporter: Any = xml.node_reporter(report)
    reporter.add_attribute("classname", classname)
    reporter.add_attribute("name", test)
    if report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        skipped = [node for node in getattr(reporter, "nodes", []) if node.tag == "skipped"]
        if skipped:
            skipped[-1].text = bin_xml_escape(f"{test}: {reason}")


def close(config: pytest.Config, report: pytest.TestReport) -> None:
    """A test reported by its call phase alone (:mod:`~pytest_dicomqc.protocol`): what junitxml
    does at teardown, done by junitxml itself from a passed teardown twin of the call report:
    the captured output (``junit_logging``), the properties, the test case closed. The twin goes
    to junitxml alone, not to the terminal, which would keep it to the end."""
    xml = _logxml(config)
    if xml is None:
        return
    teardown = copy.copy(report)
    teardown.when = "teardown"
    teardown.outcome = "passed"
    teardown.longrepr = None
    teardown.duration = 0.0
    xml.pytest_runtest_logreport(teardown)
