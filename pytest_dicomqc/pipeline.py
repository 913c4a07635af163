"""One file through the whole core: read -> extract -> evaluate -> :class:`FileRecord`.

This is what a test item runs. It never raises for bad input: the worst a file can do is to be
recorded as ``unreadable`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.datadict import dictionary_has_tag, dictionary_VM, dictionary_VR, tag_for_keyword

from pytest_dicomqc.columns import PIXEL_TYPES, ColumnType, ValueColumn
from pytest_dicomqc.dataset_checks import keys_of
from pytest_dicomqc.deadline import FileTimedOut, time_limit, timed_out_error
from pytest_dicomqc.discover import is_lfs_pointer_note
from pytest_dicomqc.extract import DESCRIPTIVE_TAGS, LEADING_TAGS
from pytest_dicomqc.reader import Extraction, HashWanted, read
from pytest_dicomqc.record import (
    FAIL,
    FILE_COLUMNS,
    KIND_DICOM,
    KIND_NON_DICOM,
    KIND_UNREADABLE,
    NOT_APPLICABLE,
    PIXEL_FIELDS,
    STATUS_FAILED,
    STATUS_PASSED,
    STATUS_SKIPPED,
    STATUS_WAIVED,
    WAIVED,
    FileRecord,
    Scalar,
    Status,
    display,
)
from pytest_dicomqc.rules.evaluate import Evaluation, Facts, applies, evaluate
from pytest_dicomqc.rules.globs import glob_matches
from pytest_dicomqc.rules.model import TAG, NonDicomPolicy, RuleSet, Target

DEFAULT_TAG_TARGETS = tuple(
    Target(TAG, keyword, tag_for_keyword(keyword)) for keyword in LEADING_TAGS + DESCRIPTIVE_TAGS
)


def value_columns(ruleset: RuleSet) -> list[ValueColumn]:
    """Metadata columns of the Files sheet, in order (rule result columns follow them), typed by
    the tag's value representation: numbers for DS, IS and the binary numeric VRs."""
    leading = list(DEFAULT_TAG_TARGETS[: len(LEADING_TAGS)])
    descriptive = list(DEFAULT_TAG_TARGETS[len(LEADING_TAGS) :])
    shown = {t.name for t in leading + descriptive}
    extra = [t for t in ruleset.columns if t.name not in shown]
    transfer_syntax, sop_class, size_bytes, notes = FILE_COLUMNS
    return [
        *(_tag_column(t) for t in leading),
        *(ValueColumn(name, PIXEL_TYPES[name]) for name in PIXEL_FIELDS),
        ValueColumn(transfer_syntax),
        ValueColumn(sop_class),
        *(_tag_column(t) for t in descriptive + extra),
        ValueColumn(size_bytes, PIXEL_TYPES[size_bytes]),
        ValueColumn(notes),
    ]


_NUMERIC_VRS: dict[str, ColumnType] = dict.fromkeys(("DS", "FL", "FD", "OF", "OD"), "number")
_NUMERIC_VRS.update(dict.fromkeys(("IS", "US", "SS", "UL", "SL", "UV", "SV"), "integer"))


def column_type(name: str) -> ColumnType:
    """The type of a Files-sheet metadata column by its name alone (a pixel summary field, or a
    DICOM keyword by its VR): how a report read back types a column whose cells cannot tell
    (a mean of 40.0 is stored as 40)."""
    if name in PIXEL_TYPES:
        return PIXEL_TYPES[name]
    tag = tag_for_keyword(name)
    return _tag_column(Target(TAG, name, tag)).type if tag is not None else "text"


def _tag_column(target: Target) -> ValueColumn:
    if target.tag is None or target.identifying or not dictionary_has_tag(target.tag):
        return ValueColumn(target.name)
    kind = _NUMERIC_VRS.get(dictionary_VR(target.tag))
    if kind is None:
        return ValueColumn(target.name)
    return ValueColumn(target.name, kind, multi_valued=dictionary_VM(target.tag) != "1")


def wanted_tags(ruleset: RuleSet) -> frozenset[int]:
    return ruleset.tags | {t.tag for t in DEFAULT_TAG_TARGETS if t.tag is not None}


@dataclass(frozen=True)
class CheckOptions:
    """What checking a file needs besides the file: the same for every file of a run, and sent
    once to each reading process."""

    ruleset: RuleSet
    tags: frozenset[int]
    """:func:`wanted_tags` of the ruleset."""
    strict: bool
    file_timeout: float = 0.0
    """Seconds the check of one file may take (``--dicom-file-timeout``); 0: no limit."""


def check(path: Path, relpath: str, options: CheckOptions) -> FileRecord:
    """:func:`check_file` within the file's time: a file that takes longer fails, timed out."""
    try:
        with time_limit(options.file_timeout):
            return check_file(path, relpath, options.ruleset, options.tags, options.strict)
    except FileTimedOut:
        return unread(relpath, options.ruleset, timed_out_error(options.file_timeout))


def lasting(record: FileRecord, options: CheckOptions) -> bool:
    """Whether a record holds for as long as its file is unchanged (and may be cached): a file
    that timed out may well be read in time on a machine less loaded."""
    return not options.file_timeout or record.error != timed_out_error(options.file_timeout)


def unread(relpath: str, ruleset: RuleSet, error: str) -> FileRecord:
    """The record of a file whose check did not finish (it timed out, or took its process down)."""
    return FileRecord(
        path=relpath,
        kind=KIND_UNREADABLE,
        verdict=STATUS_FAILED,
        error=error,
        values={},
        results=not_applicable(ruleset),
        findings=(),
    )


def check_file(path: Path, relpath: str, ruleset: RuleSet, tags: frozenset[int], strict: bool = False) -> FileRecord:
    """Read ``path`` and judge it against ``ruleset``; ``tags`` is :func:`wanted_tags` of it.

    ``strict`` makes warning rules fail files (``--dicom-strict``).
    """
    extraction = read(path, tags, hash_pixels=_hash_wanted(ruleset, relpath))
    undecodable = extraction.has_pixel_data and not extraction.pixels
    facts = Facts(
        tags=extraction.tags,
        pixels=None if undecodable else extraction.pixels,
        file=_file(extraction, relpath),
    )
    evaluated = extraction.kind == KIND_DICOM
    evaluation = evaluate(ruleset, facts, strict) if evaluated else Evaluation(not_applicable(ruleset), (), ())
    return FileRecord(
        path=relpath,
        kind=extraction.kind,
        verdict=_verdict(extraction, evaluation.results, ruleset.non_dicom, relpath),
        error=extraction.error,
        values=_values(extraction, ruleset),
        results=evaluation.results,
        findings=evaluation.findings,
        waivers=evaluation.waivers,
        dataset=keys_of(ruleset.dataset, facts, relpath, extraction.pixel_hash)
        if extraction.kind == KIND_DICOM
        else {},
    )


def _file(extraction: Extraction, relpath: str) -> dict[str, Scalar]:
    """The ``file`` facts rules look at."""
    return {
        "kind": extraction.kind,
        "transfer_syntax": extraction.transfer_syntax,
        "size_bytes": extraction.size_bytes,
        "path": relpath,
    }


def _hash_wanted(ruleset: RuleSet, relpath: str) -> bool | HashWanted:
    """Whether the reader hashes a file's pixels: only where a ``unique_pixels`` check may take
    the file, judged on its tags and file facts once they are read (see ``RuleSet.pixel_hash_scopes``)."""
    scopes = ruleset.pixel_hash_scopes
    if not scopes or () in scopes:
        return bool(scopes)  # no such check, or one that takes every file

    def wanted(extraction: Extraction) -> bool:
        facts = Facts(tags=extraction.tags, file=_file(extraction, relpath))
        return any(applies(when, facts) for when in scopes)

    return wanted


def not_applicable(ruleset: RuleSet) -> dict[str, str]:
    """Rule cells of a file the rules were not evaluated on (not DICOM, unreadable)."""
    return dict.fromkeys((rule.id for rule in ruleset.rules), NOT_APPLICABLE)


def _values(extraction: Extraction, ruleset: RuleSet) -> dict[str, Scalar]:
    values: dict[str, Scalar] = {}
    for target in DEFAULT_TAG_TARGETS + ruleset.columns:
        values[target.name] = display(extraction.tags.get(target.tag)) if target.tag is not None else None
    values.update({name: extraction.pixels.get(name) for name in PIXEL_FIELDS})
    values["transfer_syntax"] = extraction.transfer_syntax
    values["SOPClass"] = extraction.sop_class
    values["size_bytes"] = extraction.size_bytes
    values["notes"] = _notes(extraction)
    return values


def _notes(extraction: Extraction) -> str:
    """The ``notes`` cell: a Git LFS pointer's begins with ``discover.LFS_POINTER_NOTE``."""
    return "; ".join(extraction.notes)


def _verdict(extraction: Extraction, results: dict[str, str], non_dicom: NonDicomPolicy, relpath: str) -> Status:
    """passed, failed, skipped or waived: what the test item will report.

    A Git LFS pointer fails whatever ``non_dicom``'s default says (the data it stands for was
    never downloaded); only a ``non_dicom`` glob that names it may skip or pass it.
    """
    if extraction.kind == KIND_NON_DICOM:
        default = "fail" if is_lfs_pointer_note(_notes(extraction)) else non_dicom.default
        policy = next((p for glob, p in non_dicom.exceptions if glob_matches(glob, relpath)), default)
        return {"skip": STATUS_SKIPPED, "fail": STATUS_FAILED, "pass": STATUS_PASSED}[policy]
    if extraction.kind != KIND_DICOM or extraction.error or FAIL in results.values():
        return STATUS_FAILED
    return STATUS_WAIVED if WAIVED in results.values() else STATUS_PASSED
