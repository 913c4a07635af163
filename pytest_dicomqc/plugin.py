"""pytest hooks and options of pytest-dicomqc; the work lives in the modules they call."""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_dicomqc import collection, lint, reading
from pytest_dicomqc import settings as settings_module
from pytest_dicomqc.nodes import ITEM_NAME, RECORD_KEY, SETTINGS_KEY, DicomItem
from pytest_dicomqc.reporter import (
    COLLECTED_KEY,
    LEFT_OUT_KEY,
    LEFT_OUT_OUTPUT,
    STAT_ATTRIBUTE,
    WIRE_ATTRIBUTE,
    Reporter,
    XdistHooks,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_module.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--dicom-rules-check``: validate rules and waivers, read no dataset, exit 0 (errors exit 4)."""
    if not config.getoption("dicom_rules_check"):
        return None
    print(lint.summary(settings_module.load_configured_rules(config)))
    return pytest.ExitCode.OK


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ITEM_NAME}: a file of the DICOM dataset checked by pytest-dicomqc")
    settings = settings_module.resolve(config)
    if settings is None:
        return
    config.stash[SETTINGS_KEY] = settings
    collection.add_dataset_to_args(config, settings)
    reading.exit_without_collecting()
    if not hasattr(config, "workerinput"):
        reading.interrupt_on_sigterm(config)
        reporter = Reporter(config, settings)
        config.pluginmanager.register(reporter, "dicomqc-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(reporter), "dicomqc-xdist")


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    return collection.ignore(
        collection_path, config, settings, collection.pytest_ignores(config, sys.modules[__name__])
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    return collection.directory_collector(
        path, parent, settings, collection.pytest_ignores(parent.config, sys.modules[__name__])
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Take unchanged files from the cache and start reading the rest ahead, in run order."""
    settings = session.config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return
    items = [item for item in session.items if isinstance(item, DicomItem)]
    # Dataset files collected but not run: dataset-level verdicts are not given then. Counted
    # where collection happens; an xdist worker tells the controller through ``workeroutput``.
    left_out = session.config.stash.get(COLLECTED_KEY, len(items)) - len(items)
    session.config.stash[LEFT_OUT_KEY] = left_out
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[LEFT_OUT_OUTPUT] = left_out
    reading.prepare(session.config, settings, items)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Count the dataset files collected, before ``-k``, ``-m``, ``--lf``, ``--deselect`` or any
    plugin or conftest drops some: see :func:`pytest_collection_finish`."""
    if SETTINGS_KEY in config.stash:
        config.stash[COLLECTED_KEY] = sum(1 for item in items if isinstance(item, DicomItem))


def pytest_unconfigure(config: pytest.Config) -> None:
    reading.finish(config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the file's record to its call-phase report; xdist carries it to the controller."""
    report = yield
    if isinstance(item, DicomItem) and report.when == "call":
        record = item.stash.get(RECORD_KEY, None)
        if record is not None:
            del item.stash[RECORD_KEY]  # the report carries it on; items live until the session ends
            setattr(report, WIRE_ATTRIBUTE, record.to_wire())
            stat = item.stash.get(reading.STAT_KEY, None)
            if stat is not None:
                setattr(report, STAT_ATTRIBUTE, list(stat))
        if report.skipped and isinstance(report.longrepr, tuple):
            # "SKIPPED [1] data/photo.jpg: non-dicom: JPEG image", not the plugin's source line;
            # no line number: the terminal reporter prints none when it is None (typed int, though)
            report.longrepr = (item.reportinfo()[0], None, report.longrepr[2])  # type: ignore[assignment]
    return report
