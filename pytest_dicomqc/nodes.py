"""The collection tree of a dataset: folders, one file node per file, one ``dicomqc`` item each."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_dicomqc.discover import is_folder, is_regular_file, printable, sorted_entries
from pytest_dicomqc.record import (
    STATUS_FAILED,
    STATUS_SKIPPED,
    STATUS_WAIVED,
    FileRecord,
    failure_text,
    skip_reason,
    waived_reason,
)
from pytest_dicomqc.state import ITEM_NAME, SESSION_KEY

if TYPE_CHECKING:
    from pytest_dicomqc.cache import Stat


class _OutsideHooks:
    """Hooks and conftests of the folder the dataset lies in, for every node of the dataset.

    pytest picks conftest hooks by a node's path, from folders whose conftests it has loaded, and
    it loads them only for ``pytest.Directory`` nodes. Dataset folders are not Directories (data
    must not run code), so their nodes use the hook proxy of the pytest node they hang from:
    the user's own conftest hooks apply to dataset items, and no conftest.py inside the data runs.
    """

    _ihook: Any = None

    @property
    def ihook(self) -> Any:
        if self._ihook is None:  # asked many times per item: looked up once, from the parent chain
            parent = cast("pytest.Item | pytest.Collector", self).parent
            assert parent is not None
            self._ihook = parent.ihook
        return self._ihook


class DatasetFolder(_OutsideHooks, pytest.Collector):
    """A folder of the dataset, walked by the plugin itself.

    Not a ``pytest.Directory``: pytest imports the ``conftest.py`` of every Directory it collects,
    and a dataset is data, not code. Entries are sorted, the same in every xdist worker; ignore
    rules are asked per path (the plugin's ``pytest_ignore_collect`` keeps ``--ignore`` and drops
    ``norecursedirs``); symlinked folders are not followed.
    """

    def __init__(self, *, relpath: str, shown_as: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.relpath = relpath
        """Dataset-relative, ``/``-separated, :func:`printable` ("" for the root)."""
        self.shown_as = shown_as
        """Relative to the rootdir (``../`` when outside), as pytest shows a test's location."""

    @classmethod
    def root(cls, parent: pytest.Collector, path: Path) -> DatasetFolder:
        shown_as = printable(Path(os.path.relpath(path, parent.config.rootpath)).as_posix())
        nodeid = dataset_nodeid(parent.config)
        return cls.from_parent(
            parent, name=printable(path.name), path=path, nodeid=nodeid, relpath="", shown_as=shown_as
        )

    def child_paths(self, name: str) -> dict[str, str]:
        """``relpath`` and ``shown_as`` of an entry, built by text: computed for every file."""
        return {
            "relpath": f"{self.relpath}/{name}" if self.relpath else name,
            "shown_as": name if self.shown_as == "." else f"{self.shown_as}/{name}",
        }

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        shard = self.config.stash[SESSION_KEY].settings.shard
        for entry, folder in dataset_entries(self.path, self.ihook, self.config):
            path = Path(entry.path)
            name, nodeid = child_name_and_id(self, entry.name)
            if folder:
                yield DatasetFolder.from_parent(self, name=name, path=path, nodeid=nodeid, **self.child_paths(name))
                continue
            paths = self.child_paths(name)
            if shard is None or shard.holds(paths["relpath"]):  # another shard's file is not collected
                yield DicomItem.from_parent(self, path=path, file_name=name, nodeid=f"{nodeid}::{ITEM_NAME}", **paths)
        if not self.relpath:  # the root: the results over the whole dataset come after its files
            yield DatasetResults.from_parent(self, name=ITEM_NAME, path=self.path, nodeid=ITEM_NAME)


def dataset_entries(folder: Path, ihook: Any, config: pytest.Config) -> Iterator[tuple[os.DirEntry[str], bool]]:
    """A folder's entries that belong to the dataset, sorted, and whether each is a folder: real
    folders and regular files, less those an ignore rule drops (``--ignore``, ``collect_ignore``)."""
    for entry in sorted_entries(folder):
        is_dir = is_folder(entry)
        if not is_dir and not is_regular_file(entry):
            continue
        if ihook.pytest_ignore_collect(collection_path=Path(entry.path), config=config):
            continue
        yield entry, is_dir


def walk_dataset(folder: Path, ihook: Any, config: pytest.Config, relpath: str = "") -> Iterator[tuple[Path, str]]:
    """Every file of the dataset (of this run's shard) and its dataset-relative path, as collection
    finds them: for the full picture of a run that collected or selected only some of them."""
    shard = config.stash[SESSION_KEY].settings.shard
    for entry, is_dir in dataset_entries(folder, ihook, config):
        name = printable(entry.name)
        child = f"{relpath}/{name}" if relpath else name
        if is_dir:
            yield from walk_dataset(Path(entry.path), ihook, config, child)
        elif shard is None or shard.holds(child):
            yield Path(entry.path), child


class PathToDataset(_OutsideHooks, pytest.Collector):
    """A folder pytest would skip (``build``, ``.data``, …) that lies between a collected folder and
    the dataset: it yields only the next step towards the dataset, none of its own tests."""

    def collect(self) -> Iterator[pytest.Collector]:
        dataset = self.config.stash[SESSION_KEY].settings.dataset
        step = self.path / dataset.relative_to(self.path).parts[0]
        if step == dataset:
            yield DatasetFolder.root(self, step)
        else:
            name, nodeid = child_name_and_id(self, step.name)
            yield PathToDataset.from_parent(self, name=name, path=step, nodeid=nodeid)


def dataset_nodeid(config: pytest.Config) -> str:
    """The dataset root's node id by pytest's rule: its path relative to the rootdir, else empty."""
    dataset = config.stash[SESSION_KEY].settings.dataset
    try:
        relative = dataset.relative_to(config.rootpath).as_posix()
    except ValueError:
        return ""
    return "" if relative == "." else printable(relative)


def child_name_and_id(parent: pytest.Collector, entry_name: str) -> tuple[str, str]:
    """Name and node id of a folder entry as pytest builds them, with undecodable bytes escaped:
    both travel to the xdist controller (ids, keywords), which refuses lone surrogates."""
    name = printable(entry_name)
    return name, f"{parent.nodeid}/{name}" if parent.nodeid else name


class DicomQCFailure(Exception):
    """A file that failed the gate; the message is the whole, compact failure text."""


class DicomItem(_OutsideHooks, pytest.Item):
    """One file of the dataset, whatever its name or content: reads it, checks it against the
    rules and keeps the record for the report.

    The item hangs from its folder with no ``pytest.File`` node between (node id
    ``<path>::dicomqc`` all the same): pytest's cost per node is most of the plugin's per-file
    cost, in time and memory. ``-k`` still matches the file name, as an extra keyword.
    """

    _marker: pytest.MarkDecorator | None = None
    """The ``dicomqc`` marker, one object for every item."""

    def __init__(self, *, file_name: str, relpath: str, shown_as: str, **kwargs: Any) -> None:
        super().__init__(name=ITEM_NAME, **kwargs)
        if DicomItem._marker is None:
            DicomItem._marker = getattr(pytest.mark, ITEM_NAME)
        self.add_marker(DicomItem._marker)
        self.extra_keyword_matches.add(file_name)
        self.file_name = file_name
        self.relpath = relpath
        self.shown_as = shown_as
        self.record: FileRecord | None = None
        """Set when the item runs (or from the cache before); the call report carries it on."""
        self.stat: Stat | None = None
        # Every attribute set here, none later: the items' attribute dicts then share their keys
        # (PEP 412); one set afterwards costs each item a dict of its own (768 bytes a file).
        self._ihook = self.parent.ihook if self.parent is not None else None
        self.location = self.shown_as, None, f"{ITEM_NAME}: {self.relpath}"
        """What pytest would make of :meth:`reportinfo`, without its per-file path arithmetic."""

    def __repr__(self) -> str:  # the --collect-only tree shows the file, not only "dicomqc"
        return f"<{type(self).__name__} {self.file_name}>"

    def runtest(self) -> None:
        record = self.config.stash[SESSION_KEY].check(self)
        if record.verdict == STATUS_FAILED:
            raise DicomQCFailure(failure_text(record))
        if record.verdict == STATUS_SKIPPED:
            pytest.skip(skip_reason(record))
        if record.verdict == STATUS_WAIVED:
            pytest.xfail(waived_reason(record))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, DicomQCFailure):
            # The message alone, no traceback. A repr rather than a str, so that pytest's short
            # summary (-r) shows the first reason; without the exception's class name in front.
            failure = excinfo.getrepr(style="value")
            if failure.reprcrash is not None:
                failure.reprcrash.message = str(excinfo.value).splitlines()[0]
            return failure
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[str, int, str]:
        # printable: the location travels to the xdist controller, which refuses undecodable names.
        # Line 0: a data file has none, but pytest needs a number for a skip mark's location (the
        # plugin's reports then show none, see pytest_runtest_makereport)
        return printable(str(self.path)), 0, f"{ITEM_NAME}: {self.relpath}"


class DatasetResults(_OutsideHooks, pytest.Collector):
    """The results over the whole dataset, after its files: ``dicomqc::dicom-files``,
    ``dicomqc::dataset::<check id>`` and ``dicomqc::rule::<rule id>`` (``max_failing``); none in
    one shard of several (``--dicom-shard``).

    Collected like any test, so that ``--collect-only``, progress, ``-k``, ``-m`` and
    ``--deselect`` count and select them; judged by the controller once every file has reported
    (see :mod:`pytest_dicomqc.reporter`), never run by a worker.
    """

    def collect(self) -> Iterator[pytest.Item]:
        from pytest_dicomqc.conclusion import result_names  # judged only where a dataset runs

        settings = self.config.stash[SESSION_KEY].settings
        if not settings.judged_here:
            return  # one shard of several: judged by the merge, over every shard's records
        for name in result_names(settings.ruleset):
            yield ResultItem.from_parent(self, name=name, nodeid=f"{ITEM_NAME}::{name}")


class ResultItem(_OutsideHooks, pytest.Item):
    """One result over the whole dataset; its reports are made by the controller's reporter."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(ITEM_NAME)

    def runtest(self) -> None:
        """Not called: the plugin's ``pytest_runtest_protocol`` reports this item itself."""

    def reportinfo(self) -> tuple[str, int | None, str]:
        return ITEM_NAME, None, self.name.replace("::", " ")


DATASET_NODES: tuple[type, ...] = (DatasetFolder, PathToDataset, DicomItem, DatasetResults, ResultItem)
"""The nodes of the dataset: none has fixtures, their setup and teardown do nothing."""
