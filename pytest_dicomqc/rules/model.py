"""The rules as loaded: plain frozen data, no I/O and no pytest."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, Literal, TypeAlias, get_args

from pytest_dicomqc.record import Severity
from pytest_dicomqc.rules.regex import Regex

RuleValue: TypeAlias = str | int | float | bool
"""A value written in the rules file (never None, unlike a cell)."""
Operand: TypeAlias = RuleValue | tuple[RuleValue, ...] | Regex
"""What an operator compares with: see :mod:`pytest_dicomqc.rules.operators`."""

NonDicomAction: TypeAlias = Literal["skip", "fail", "pass"]
"""What a non-DICOM file does: skipped (default), failed or passed."""
NON_DICOM_POLICIES: tuple[NonDicomAction, ...] = get_args(NonDicomAction)
Source: TypeAlias = Literal["tag", "pixel", "file"]
"""What a rule looks at: a DICOM tag, a pixel summary field or a fact about the file."""
SOURCES: tuple[Source, ...] = get_args(Source)
TAG: Final[Source] = "tag"
PIXEL: Final[Source] = "pixel"
FILE: Final[Source] = "file"
FileField: TypeAlias = Literal["kind", "transfer_syntax", "size_bytes", "path"]
FILE_FIELDS: tuple[FileField, ...] = get_args(FileField)


@dataclass(frozen=True)
class Target:
    """What a rule looks at: a DICOM tag, a pixel summary field or a fact about the file."""

    source: Source
    name: str
    tag: int | None = None
    identifying: bool = field(default=False, compare=False)
    """Values are never shown (patient names, IDs, birth dates): see ``extract.is_identifying``."""

    def __str__(self) -> str:
        return self.name if self.source == TAG else f"{self.source}.{self.name}"


@dataclass(frozen=True)
class Check:
    """An operator and its operand, e.g. ``contains: ORIGINAL``."""

    operator: str
    operand: Operand


@dataclass(frozen=True)
class Condition:
    """One ``when:`` entry; a rule applies only where all of its conditions hold."""

    target: Target
    check: Check


@dataclass(frozen=True)
class Threshold:
    """``max_failing``: how many applicable files may fail a rule before the dataset fails it."""

    count: int | None = None
    percent: str | None = None
    """As written ("2.5"): compared exactly, since 0.29 * 100 is 28.999… in floating point."""
    text: str = ""

    def allows(self, failing: int, applicable: int) -> bool:
        if self.count is not None:
            return failing <= self.count
        assert self.percent is not None
        return failing * 100 <= Fraction(self.percent) * applicable


@dataclass(frozen=True)
class Rule:
    id: str
    target: Target
    check: Check
    severity: Severity = "error"
    allow_missing: bool = False
    when: tuple[Condition, ...] = ()
    description: str = ""
    message: str = ""
    max_failing: Threshold | None = None
    line: int = 0


@dataclass(frozen=True)
class Waiver:
    """A known finding accepted for a while: matched by path glob or SOPInstanceUID."""

    id: str
    reason: str
    rules: tuple[str, ...]
    """Rule ids it waives; ``("*",)`` waives every rule."""
    path: str | None = None
    sop_instance_uid: str | None = None
    expires: str | None = None
    """ISO date; on and after it the waiver no longer applies."""
    expired: bool = False
    source: str = ""
    line: int = 0

    def covers(self, rule_id: str) -> bool:
        return "*" in self.rules or rule_id in self.rules


@dataclass(frozen=True)
class NonDicomPolicy:
    """What non-DICOM files do: ``default`` (skip, fail or pass) unless a glob says otherwise."""

    default: NonDicomAction = "skip"
    exceptions: tuple[tuple[str, NonDicomAction], ...] = ()
    """(glob, policy) pairs, first match wins."""


DatasetCheckType: TypeAlias = Literal["unique", "unique_pixels", "disjoint", "consistent", "count"]
DATASET_CHECK_TYPES: tuple[DatasetCheckType, ...] = get_args(DatasetCheckType)
UNIQUE: Final[DatasetCheckType] = "unique"
UNIQUE_PIXELS: Final[DatasetCheckType] = "unique_pixels"
DISJOINT: Final[DatasetCheckType] = "disjoint"
CONSISTENT: Final[DatasetCheckType] = "consistent"
COUNT: Final[DatasetCheckType] = "count"
SPLIT = "split"
"""``group_by: split``: group files by their split folder (see :attr:`DatasetCheck.split`)."""
DEFAULT_SPLIT = "([^/]+)/"
"""The split of a file: the first folder under the dataset root (``train/``, ``val/``, ``test/``)."""
_DEFAULT_SPLIT_REGEX = Regex(DEFAULT_SPLIT, groups=True)
INSTANCE_NUMBER = Target(TAG, "InstanceNumber", 0x00200013)
IMAGE_POSITION = Target(TAG, "ImagePositionPatient", 0x00200032)
IMAGE_ORIENTATION = Target(TAG, "ImageOrientationPatient", 0x00200037)


@dataclass(frozen=True)
class DatasetCheck:
    """A check over many files: duplicates, split leakage, series consistency, group sizes.

    Each file contributes a small key (see ``dataset_checks.keys_of``); the controller groups
    the keys of every file once the run is over.
    """

    id: str
    type: DatasetCheckType
    targets: tuple[Target, ...] = ()
    """``unique``/``disjoint``: the one tag; ``consistent``: the tags and pixel fields that must agree."""
    group_by: Target | None = None
    """``consistent``/``count``: files are grouped by this tag (``None`` with ``count``: by split)."""
    split: Regex = _DEFAULT_SPLIT_REGEX
    """Matched at the start of the dataset-relative path; its first group (else the match) is the split."""
    instance_numbers: bool = False
    """``consistent``: InstanceNumber must be unique within each group."""
    slice_spacing: float | None = None
    """``consistent``: positions along the slice normal must be evenly spaced, within this many mm."""
    minimum: int | None = None
    maximum: int | None = None
    severity: Severity = "error"
    when: tuple[Condition, ...] = ()
    description: str = ""

    @property
    def tags(self) -> frozenset[int]:
        targets = [*self.targets, *(c.target for c in self.when)]
        if self.group_by is not None:
            targets.append(self.group_by)
        if self.instance_numbers or self.slice_spacing is not None:
            targets += [INSTANCE_NUMBER, IMAGE_POSITION, IMAGE_ORIENTATION]
        return frozenset(t.tag for t in targets if t.tag is not None)


@dataclass(frozen=True)
class RuleSet:
    """A validated rules file, with the waivers that apply to it."""

    source: str
    rules: tuple[Rule, ...]
    columns: tuple[Target, ...] = ()
    non_dicom: NonDicomPolicy = field(default_factory=NonDicomPolicy)
    waivers: tuple[Waiver, ...] = ()
    dataset: tuple[DatasetCheck, ...] = ()
    min_dicom_files: int = 1
    """A run that checked fewer DICOM files than this fails (un-pulled Git LFS pointers, an empty folder)."""

    @property
    def tags(self) -> frozenset[int]:
        """Every tag the rules, their conditions, the extra columns and the dataset checks read."""
        targets = [rule.target for rule in self.rules]
        targets += [condition.target for rule in self.rules for condition in rule.when]
        targets += list(self.columns)
        tags = frozenset(t.tag for t in targets if t.tag is not None)
        return tags.union(*(check.tags for check in self.dataset))

    @functools.cached_property  # asked for every file read
    def pixel_hash_scopes(self) -> tuple[tuple[Condition, ...], ...]:
        """Per ``unique_pixels`` check, its ``when`` without the conditions on pixel fields: a
        file's pixels are hashed only where one of these holds. It is decided before the pixels
        are decoded, so pixel conditions are not known yet and count as holding (where one does
        not, the check leaves the hashed file out). No check: nothing is hashed."""
        return tuple(
            tuple(condition for condition in check.when if condition.target.source != PIXEL)
            for check in self.dataset
            if check.type == UNIQUE_PIXELS
        )
