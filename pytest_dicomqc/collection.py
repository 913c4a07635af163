"""Where the dataset joins pytest's collection, and which paths inside it are ignored.

pytest skips folders such as ``build``, ``dist``, ``venv`` and hidden ones (``norecursedirs``);
inside a dataset they are data and must be checked, so the plugin decides for dataset paths:
pytest's other ignore rules (``--ignore``, ``--ignore-glob``, ``collect_ignore``) still apply.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_dicomqc.nodes import DatasetFolder, PathToDataset, child_name_and_id
from pytest_dicomqc.settings import Settings, args_reaching, path_given
from pytest_dicomqc.state import ITEM_NAME, SESSION_KEY
from pytest_dicomqc.writers.atomic import partial_files

LEFT_OUT_OUTPUT = "dicomqc_left_out"
"""Key of an xdist worker's ``workeroutput``: dataset files it collected but did not keep."""
PytestIgnores = Callable[[Path], bool]
"""Whether pytest, without this plugin, would ignore a path."""


def add_dataset_to_args(config: pytest.Config, settings: Settings) -> None:
    """``--dicom-dir`` alone collects only the dataset, and with test paths adds it to them;
    ``dicom_dir`` from the ini file adds it the way ``testpaths`` are used: only when no test
    paths are given (``pytest tests/test_model.py`` runs just that file) and pytest runs in the
    rootdir, or when a path given reaches the dataset (:func:`settings.resolve` leaves the plugin
    idle otherwise).

    Nothing is added when a path given already selects part of the dataset (re-running one
    failed file) or contains it (pytest's walk reaches it, see :func:`ignore`).
    """
    dataset = settings.dataset
    _select_items_by_path(config, dataset)
    paths_given = config.args_source == pytest.Config.ArgsSource.ARGS
    if settings.dataset_from_command_line and not paths_given:
        config.args[:] = [str(dataset)]
        return
    if not any(args_reaching(config, dataset)):
        config.args.append(str(dataset))


def _select_items_by_path(config: pytest.Config, dataset: Path) -> None:
    """``data/x.dcm::dicomqc`` becomes ``data/x.dcm``: the item is the file's node itself (no
    ``pytest.File`` in between), which pytest's argument matching finds by path alone."""
    for index, arg in enumerate(config.args):
        path, _, names = arg.partition("::")
        if names == ITEM_NAME and _within(str(path_given(config, path)), dataset):
            config.args[index] = path


def selects_part_of_dataset(config: pytest.Config, dataset: Path) -> bool:
    """Whether a path inside the dataset was given as argument: only part of it is collected.
    (Files collected and then deselected, by ``-k``, ``-m``, ``--lf`` or ``--deselect``, are
    counted in ``pytest_collection_finish``.)"""
    return any(dataset in path_given(config, arg).parents for arg in config.args)


def ignore(path: Path, config: pytest.Config, settings: Settings, pytest_ignores: PytestIgnores) -> bool | None:
    """The plugin's answer to ``pytest_ignore_collect``; ``None`` leaves the path to pytest."""
    dataset = settings.dataset
    if _within(str(path), dataset):
        if _ignored(config, settings).match(path):
            return True
        if not path.is_dir():
            return False  # pytest's other reasons (venv, norecursedirs) are about folders
        # pytest skips __pycache__ folders (Python's, not data) and those norecursedirs names
        python_folder = path.name == "__pycache__" or _norecursedirs_match(path, config)
        return pytest_ignores(path) and not python_folder
    if _within(str(dataset), path) and pytest_ignores(path):
        return False  # collected as a PathToDataset, which leads to the dataset and nowhere else
    return None


def _within(path: str, folder: Path) -> bool:
    """``path`` is ``folder`` or below it; by text, as this runs for every file of the dataset."""
    top = str(folder)
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def directory_collector(
    path: Path, parent: pytest.Collector, settings: Settings, pytest_ignores: PytestIgnores
) -> pytest.Collector | None:
    """The plugin's answer to ``pytest_collect_directory``; ``None`` leaves the folder to pytest."""
    if path == settings.dataset:
        return DatasetFolder.root(parent, path)
    if path in settings.dataset.parents and pytest_ignores(path):
        name, nodeid = child_name_and_id(parent, path.name)
        return PathToDataset.from_parent(parent, name=name, path=path, nodeid=nodeid)
    return None


@dataclass(frozen=True)
class Ignored:
    """Dataset paths never collected: the user's ``--ignore``, ``--ignore-glob`` and conftest
    ``collect_ignore``/``collect_ignore_glob``; and what the run itself writes (its report, JSON
    Lines, records and their partial files, junitxml, pytest's cache), which a dataset holding them
    (``--dicom-dir=.``) must not take for data: each run would find more files than the last.

    The user's ignores are asked apart from pytest's other reasons because they must win even for
    a folder whose name is in ``norecursedirs``; gathered once per session, since a dataset has
    many paths.
    """

    paths: tuple[str, ...]
    globs: tuple[str, ...]

    def match(self, path: Path) -> bool:
        text = str(path)  # compared as text: this runs for every file of the dataset
        if any(text == ignored or text.startswith(ignored + os.sep) for ignored in self.paths):
            return True
        return any(fnmatch.fnmatch(text, glob) for glob in self.globs)


def _ignored(config: pytest.Config, settings: Settings) -> Ignored:
    """The conftests are those of the folder holding the dataset: none inside it is loaded."""
    session = config.stash[SESSION_KEY]
    known = session.ignored
    if known is None:
        conftest_paths = getattr(config, "_getconftest_pathlist", lambda *_a, **_k: None)  # pytest's own helper
        conftest_folder = settings.dataset.parent
        # made absolute as pytest makes them (os.path.abspath: ``..`` resolved, like the dataset's path)
        paths = [Path(os.path.abspath(p)) for p in config.getoption("ignore") or []]
        paths += conftest_paths("collect_ignore", path=conftest_folder) or []
        globs = [os.path.abspath(g) for g in config.getoption("ignore_glob") or []]
        globs += [str(g) for g in conftest_paths("collect_ignore_glob", path=conftest_folder) or []]
        written = [Path(os.path.normpath(p)) for p in (settings.report, settings.json, settings.records) if p]
        outputs = [Path(os.path.normpath(path)) for path in _pytest_outputs(config)]
        paths += [path for path in [*written, *outputs] if _within(str(path), settings.dataset)]
        globs += [partial_files(path) for path in written if _within(str(path), settings.dataset)]
        known = session.ignored = Ignored(
            tuple(dict.fromkeys(str(path).rstrip(os.sep) for path in paths)), tuple(globs)
        )
    return known


def _pytest_outputs(config: pytest.Config) -> list[Path]:
    """junitxml's file and pytest's cache folder: what pytest writes beside a run's report."""
    outputs = []
    xmlpath = config.getoption("xmlpath", None)
    if xmlpath:
        outputs.append(config.invocation_params.dir / os.path.expanduser(os.path.expandvars(xmlpath)))
    if config.pluginmanager.hasplugin("cacheprovider"):
        folder = Path(os.path.expanduser(os.path.expandvars(config.getini("cache_dir"))))
        outputs.append(folder if folder.is_absolute() else config.rootpath / folder)
    return outputs


def _norecursedirs_match(path: Path, config: pytest.Config) -> bool:
    patterns: list[str] = config.getini("norecursedirs")
    return any(fnmatch.fnmatch(path.name if "/" not in p else str(path), p) for p in patterns)


def pytest_ignores(config: pytest.Config, plugin: object) -> PytestIgnores:
    """pytest's own ``pytest_ignore_collect`` answer, and other plugins', without ``plugin``'s."""
    session = config.stash[SESSION_KEY]
    asker = session.pytest_ignores
    if asker is None:
        others = config.pluginmanager.subset_hook_caller("pytest_ignore_collect", remove_plugins=[plugin])
        legacy_path = _legacy_path() if "path" in (others.spec.argnames if others.spec else ()) else None
        if legacy_path is not None:
            # the hookspec still declares py.path's ``path``: a call without it makes pluggy warn in
            # every run (an error under -W error); pytest's own hook proxy fills it in the same way
            asker = lambda path: bool(others(collection_path=path, path=legacy_path(path), config=config))  # noqa: E731
        else:
            asker = lambda path: bool(others(collection_path=path, config=config))  # noqa: E731
        session.pytest_ignores = asker
    return asker


def _legacy_path() -> Callable[[Path], object] | None:
    """pytest's converter to py.path (private, gone in a pytest that no longer passes ``path``)."""
    try:
        from _pytest.compat import legacy_path
    except ImportError:
        return None
    return legacy_path
