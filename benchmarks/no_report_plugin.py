"""The plugin with its report switched off: the baseline of the report's share of a run (issue 14).

Loaded with ``-p no_report_plugin`` (``benchmarks/`` on PYTHONPATH). Everything else runs as in CI:
the files are read and judged, the conclusion is drawn and reported; no row goes to a writer, and
neither the workbook nor the sheets formatted from the conclusion are made.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from pytest_dicomqc import reporter
    from pytest_dicomqc.writers import stream

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    stream.ReportStream._start = nothing  # type: ignore[method-assign]
    stream.ReportStream.finish = nothing  # type: ignore[method-assign]
    reporter.end_of_run = nothing  # type: ignore[assignment]
