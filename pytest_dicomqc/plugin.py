"""pytest hooks and options of pytest-dicomqc; the work lives in the modules they call."""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_dicomqc import collection, lint
from pytest_dicomqc import settings as settings_module
from pytest_dicomqc.nodes import ITEM_NAME, READ_AHEAD_KEY, RECORD_KEY, SETTINGS_KEY, DicomItem
from pytest_dicomqc.readahead import CheckOptions, Job, ReadAhead
from pytest_dicomqc.reporter import WIRE_ATTRIBUTE, Reporter, XdistHooks


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
    if not hasattr(config, "workerinput"):
        reporter = Reporter(config, settings)
        config.pluginmanager.register(reporter, "dicomqc-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(reporter), "dicomqc-xdist")


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    return collection.ignore(collection_path, config, settings, _pytest_ignores(config))


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    return collection.directory_collector(path, parent, settings, _pytest_ignores(parent.config))


def _pytest_ignores(config: pytest.Config) -> collection.PytestIgnores:
    """pytest's own ``pytest_ignore_collect`` answer, and other plugins', without this plugin's."""
    others = config.pluginmanager.subset_hook_caller("pytest_ignore_collect", remove_plugins=[sys.modules[__name__]])
    return lambda path: bool(others(collection_path=path, config=config))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Start reading the dataset in other processes, in the order the items will run."""
    settings = session.config.stash.get(SETTINGS_KEY, None)
    if settings is None or hasattr(session.config, "workerinput"):  # an xdist worker is one reader already
        return
    items = [item for item in session.items if isinstance(item, DicomItem)]
    workers = settings_module.readers(settings, len(items))
    if workers:
        jobs = [Job(item.path, item.relpath) for item in items]
        options = CheckOptions(settings.ruleset, settings.tags, settings.strict)
        session.config.stash[READ_AHEAD_KEY] = ReadAhead(jobs, options, workers)


def pytest_unconfigure(config: pytest.Config) -> None:
    read_ahead = config.stash.get(READ_AHEAD_KEY, None)
    if read_ahead is not None:
        read_ahead.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the file's record to its call-phase report; xdist carries it to the controller."""
    report = yield
    if isinstance(item, DicomItem) and report.when == "call":
        record = item.stash.get(RECORD_KEY, None)
        if record is not None:
            setattr(report, WIRE_ATTRIBUTE, record.to_wire())
        if report.skipped and isinstance(report.longrepr, tuple):
            # "SKIPPED [1] data/photo.jpg: non-dicom: JPEG image", not the plugin's source line;
            # no line number: the terminal reporter prints none when it is None (typed int, though)
            report.longrepr = (item.reportinfo()[0], None, report.longrepr[2])  # type: ignore[assignment]
    return report
