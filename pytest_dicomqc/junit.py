"""How the dataset's results read in JUnit XML views (GitLab, Jenkins, Azure).

pytest's junitxml turns a node id into a class name by its path with dots, so
``data/CT_small.dcm::dicomqc`` shows as package ``data.CT_small``, class ``dcm``, test ``dicomqc``.
Each dataset result is named here instead: class ``dicomqc``, test the dataset-relative path (or
``dataset::<check>``), and a skip reads ``labels.csv: non-dicom: text file`` (no line number: a
data file has none, where pytest would write ``None``).
"""

from __future__ import annotations

from typing import Any

import pytest


def name(config: pytest.Config, report: pytest.TestReport, classname: str, test: str) -> None:
    """Called after junitxml has taken the report (``--junitxml`` only; quietly nothing if
    pytest's junitxml internals ever change)."""
    try:
        from _pytest.junitxml import bin_xml_escape, xml_key
    except ImportError:
        return
    xml = config.stash.get(xml_key, None)
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
