"""pytest hooks and options of pytest-dicomqc; the work lives in the modules they call.

Installed, the plugin is loaded by every pytest run of the environment: at import it needs only
pytest, and the modules that read DICOM (pydicom, numpy) are imported once a dataset is configured.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_dicomqc import settings
from pytest_dicomqc.state import ITEM_NAME, SESSION_KEY

# Everything else is imported inside the hooks, once a dataset is configured (a hook that finds no
# session returns before): a unit-test run in an environment where the plugin is installed pays
# for this module, the options and one stash lookup per hook call, nothing more.


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--dicom-rules-check``: validate rules and waivers, read no dataset, exit 0 (errors exit 4)."""
    if not config.getoption("dicom_rules_check"):
        return None
    from pytest_dicomqc import lint

    print(lint.summary(settings.load_configured_rules(config)))
    return pytest.ExitCode.OK


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ITEM_NAME}: a file of the DICOM dataset checked by pytest-dicomqc")
    resolved = settings.resolve(config)
    if resolved is None:
        return
    from pytest_dicomqc import collection
    from pytest_dicomqc.session import DicomQCSession, exit_without_collecting

    session = config.stash[SESSION_KEY] = DicomQCSession(config, resolved)
    collection.add_dataset_to_args(config, resolved)
    exit_without_collecting()
    if not hasattr(config, "workerinput"):
        from pytest_dicomqc.reporter import Reporter, XdistHooks

        session.interrupt_on_sigterm()
        session.reporter = Reporter(session)
        config.pluginmanager.register(session.reporter, "dicomqc-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(session.reporter), "dicomqc-xdist")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.reporter is None:
        return None
    header: list[str] = session.reporter.header()
    return header


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return None
    from pytest_dicomqc import collection

    return collection.ignore(
        collection_path, config, session.settings, collection.pytest_ignores(config, sys.modules[__name__])
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash.get(SESSION_KEY, None)
    if session is None:
        return None
    from pytest_dicomqc import collection

    return collection.directory_collector(
        path, parent, session.settings, collection.pytest_ignores(parent.config, sys.modules[__name__])
    )


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Generator[None]:
    """Count the dataset files collected before ``-k``, ``-m``, ``--lf``, ``--deselect`` or any
    plugin drops some; afterwards, put the results over the whole dataset last, whatever order
    other plugins (pytest-randomly) chose: they are judged once every file has reported."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        yield
        return
    from pytest_dicomqc.nodes import DicomItem, ResultItem

    session.collected = sum(1 for item in items if isinstance(item, DicomItem))
    yield
    results: list[pytest.Item] = [item for item in items if isinstance(item, ResultItem)]
    if results:
        items[:] = [item for item in items if not isinstance(item, ResultItem)] + results


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Take unchanged files from the cache and start reading the rest ahead, in run order."""
    dicomqc = session.config.stash.get(SESSION_KEY, None)
    if dicomqc is None:
        return
    from pytest_dicomqc import collection
    from pytest_dicomqc.nodes import DicomItem

    items = [item for item in session.items if isinstance(item, DicomItem)]
    dicomqc.selected = len(items)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker tells the controller what it left out
        workeroutput[collection.LEFT_OUT_OUTPUT] = dicomqc.left_out
    dicomqc.prepare(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A dataset file runs its call phase alone, one report per file (see
    :mod:`~pytest_dicomqc.protocol`). A result over the whole dataset is reported by the
    controller, once every file has been: no process runs it (see
    :class:`~pytest_dicomqc.nodes.DatasetResults`)."""
    if SESSION_KEY not in item.config.stash:
        return None
    from pytest_dicomqc.nodes import DATASET_NODES, DicomItem, ResultItem
    from pytest_dicomqc.protocol import runs_alone

    if isinstance(item, ResultItem):
        return True
    if isinstance(item, DicomItem) and runs_alone(item, nextitem, DATASET_NODES):
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the file's record to its call-phase report; xdist carries it to the controller."""
    report = yield
    if SESSION_KEY not in item.config.stash:
        return report
    from pytest_dicomqc.nodes import DicomItem

    if isinstance(item, DicomItem):
        if report.skipped and isinstance(report.longrepr, tuple):
            # "SKIPPED [1] data/photo.jpg: non-dicom: JPEG image": the file, no line, not the
            # plugin's source line (a skip by the file's content) nor line 1 (a skip mark's)
            report.longrepr = (item.reportinfo()[0], None, report.longrepr[2])  # type: ignore[assignment]
        if report.when == "call" and item.record is not None:
            from pytest_dicomqc import wire

            wire.attach(report, item.record, item.stat)
            item.record = None  # the report carries it on; items live until the session ends
    return report


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.finish()
