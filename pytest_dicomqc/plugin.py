"""pytest hooks and options of pytest-dicomqc; the work lives in the modules they call."""

from __future__ import annotations

import fnmatch
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_dicomqc import settings as settings_module
from pytest_dicomqc.nodes import ITEM_NAME, RECORD_KEY, SETTINGS_KEY, DatasetDirectory, DicomItem
from pytest_dicomqc.reporter import WIRE_ATTRIBUTE, Reporter, XdistHooks


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_module.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ITEM_NAME}: a file of the DICOM dataset checked by pytest-dicomqc")
    settings = settings_module.resolve(config)
    if settings is None:
        return
    config.stash[SETTINGS_KEY] = settings
    _add_dataset_to_args(config, settings.dataset, settings.dataset_from_command_line)
    if not hasattr(config, "workerinput"):
        reporter = Reporter(config, settings)
        config.pluginmanager.register(reporter, "dicomqc-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(reporter), "dicomqc-xdist")


def _add_dataset_to_args(config: pytest.Config, dataset: Path, from_command_line: bool) -> None:
    """``--dicom-dir`` alone collects only the dataset; with test paths or from ini, adds it."""
    if from_command_line and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(dataset)]
        return
    base = config.invocation_params.dir
    for arg in config.args:
        given = (base / arg.split("::")[0]).absolute()
        if given.is_dir() and (given == dataset or given in dataset.parents):
            return  # collected anyway; pytest_ignore_collect below keeps norecursedirs out of it
    config.args.append(str(dataset))


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Inside the dataset only ``--ignore``/``--ignore-glob`` apply: not norecursedirs, not venv detection."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return None
    if collection_path != settings.dataset and settings.dataset not in collection_path.parents:
        return None
    ignored = [Path(p).absolute() for p in config.getoption("ignore") or []]
    if any(collection_path == p or p in collection_path.parents for p in ignored):
        return True
    globs = [str(Path(g).absolute()) for g in config.getoption("ignore_glob") or []]
    return any(fnmatch.fnmatch(str(collection_path), g) for g in globs)


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    settings = parent.config.stash.get(SETTINGS_KEY, None)
    if settings is not None and path == settings.dataset:
        return DatasetDirectory.from_parent(parent, path=path)
    return None


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
