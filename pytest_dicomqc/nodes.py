"""The collection tree of a dataset: folders, one file node per file, one ``dicomqc`` item each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_dicomqc.discover import display_path, printable, sorted_entries
from pytest_dicomqc.pipeline import check_file
from pytest_dicomqc.record import KIND_NON_DICOM, FileRecord
from pytest_dicomqc.settings import Settings

ITEM_NAME = "dicomqc"
SETTINGS_KEY = pytest.StashKey[Settings]()
RECORD_KEY = pytest.StashKey[FileRecord]()


class DatasetDirectory(pytest.Directory):
    """A dataset folder, walked by the plugin so that ``norecursedirs`` does not apply inside it."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        ihook = self.ihook
        for entry in sorted_entries(self.path):
            path = Path(entry.path)
            if ihook.pytest_ignore_collect(collection_path=path, config=self.config):
                continue
            # Names and ids as pytest builds them, but with undecodable bytes escaped: both travel
            # to the xdist controller (ids, keywords), which refuses lone surrogates.
            name = printable(entry.name)
            nodeid = f"{self.nodeid}/{name}" if self.nodeid else name
            if entry.is_dir(follow_symlinks=False):
                yield DatasetDirectory.from_parent(self, path=path, name=name, nodeid=nodeid)
            elif entry.is_file():
                yield DicomFile.from_parent(self, path=path, name=name, nodeid=nodeid)


class DicomFile(pytest.File):
    """Any file of the dataset, whatever its name or content."""

    def collect(self) -> Iterator[pytest.Item]:
        yield DicomItem.from_parent(self, name=ITEM_NAME)


class DicomQCFailure(Exception):
    """A file that failed the gate; the message is the whole, compact failure text."""


class DicomItem(pytest.Item):
    """Reads one file, checks it against the rules and keeps the record for the report."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(ITEM_NAME)
        self.relpath = display_path(self.path, self.config.stash[SETTINGS_KEY].dataset)

    def runtest(self) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        record = check_file(self.path, self.relpath, settings.ruleset, settings.tags)
        self.stash[RECORD_KEY] = record
        if record.verdict == "failed":
            raise DicomQCFailure(failure_text(record))
        if record.verdict == "skipped":
            pytest.skip(f"{record.kind}: {record.values.get('notes') or 'not a DICOM file'}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, DicomQCFailure):
            # The message alone, no traceback. A repr rather than a str, so that pytest's short
            # summary (-r) shows the first reason; without the exception's class name in front.
            failure = excinfo.getrepr(style="value")
            if failure.reprcrash is not None:
                failure.reprcrash.message = str(excinfo.value).splitlines()[0]
            return failure
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[str, int | None, str]:
        # printable: the location travels to the xdist controller, which refuses undecodable names
        return printable(str(self.path)), None, f"{ITEM_NAME}: {self.relpath}"


def failure_text(record: FileRecord) -> str:
    """The compact failure shown by pytest: one line per reason, observed vs expected.

    The first line is the most useful one, since pytest's short summary shows only it.
    """
    lines = []
    if record.error:
        lines.append(f"{record.kind}: {record.error}")
    if record.kind == KIND_NON_DICOM:
        lines.append(f"non-DICOM file ({record.values.get('notes')}) and the rules say non_dicom: fail")
    lines += [f"{f.rule_id}: {f.message}" for f in record.findings if f.severity == "error"]
    warnings = [f"{f.rule_id} ({f.observed})" for f in record.findings if f.severity != "error"]
    if warnings:
        lines.append("warnings: " + ", ".join(warnings))
    return "\n".join(lines)
