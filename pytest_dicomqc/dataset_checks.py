"""Dataset checks: what no single file shows. Duplicates, split leakage, series consistency, sizes.

Two halves, both pure. :func:`keys_of` runs where a file is read and keeps only the small key
each configured check needs (identifying values hashed there, so they never travel). :func:`judge`
runs once on the controller over every file's keys and names the groups and files at fault.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_dicomqc.record import Scalar, Value, display, is_empty
from pytest_dicomqc.rules.evaluate import Facts, Unread, applies
from pytest_dicomqc.rules.model import (
    COUNT,
    DISJOINT,
    IMAGE_ORIENTATION,
    IMAGE_POSITION,
    INSTANCE_NUMBER,
    UNIQUE,
    UNIQUE_PIXELS,
    DatasetCheck,
    Target,
)

_SHOWN_FILES = 3
_SHOWN_PROBLEMS = 3


def keys_of(checks: Sequence[DatasetCheck], facts: Facts, relpath: str, pixel_hash: str) -> dict[str, list[Scalar]]:
    """Per check id, what this file contributes; checks whose ``when`` or key does not apply are left out."""
    keys: dict[str, list[Scalar]] = {}
    for check in checks:
        if applies(check.when, facts):
            key = _key(check, facts, relpath, pixel_hash)
            if key is not None:
                keys[check.id] = key
    return keys


def _key(check: DatasetCheck, facts: Facts, relpath: str, pixel_hash: str) -> list[Scalar] | None:
    if check.type == UNIQUE_PIXELS:
        return [pixel_hash] if pixel_hash else None
    if check.type == UNIQUE:
        value = _shown(check.targets[0], facts)
        return None if value is None else [value]
    if check.type == DISJOINT:
        value, split = _shown(check.targets[0], facts), split_of(check.split, relpath)
        return None if value is None or split is None else [value, split]
    group = _shown(check.group_by, facts) if check.group_by is not None else split_of(check.split, relpath)
    if group is None:
        return None
    if check.type == COUNT:
        return [group]
    instance = facts.lookup(INSTANCE_NUMBER)
    return [
        group,
        instance if type(instance) is int else None,
        _slice_position(facts) if check.slice_spacing is not None else None,
        *(_shown(target, facts) for target in check.targets),
    ]


def split_of(pattern: re.Pattern[str], relpath: str) -> str | None:
    """The split a dataset-relative path lies in: the pattern's first group (else its match) at the start."""
    match = pattern.match(relpath)
    if match is None:
        return None
    return match.group(1) if pattern.groups else match.group(0)


def _shown(target: Target, facts: Facts) -> Scalar:
    """A value as it is grouped and shown: text as DICOM writes it; identifying values hashed."""
    value = facts.lookup(target)
    if isinstance(value, Unread) or is_empty(value):
        return None
    text = display(value)
    if target.identifying:
        return pseudonym(str(text))
    return text


def pseudonym(text: str) -> str:
    """A stable stand-in for an identifying value: equal values get equal pseudonyms, and the
    value itself never reaches the report. A hash, not anonymisation: short IDs can be guessed."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def _slice_position(facts: Facts) -> float | None:
    """Position along the slice normal (mm): ImagePositionPatient · (row × column cosines)."""
    position, orientation = facts.lookup(IMAGE_POSITION), facts.lookup(IMAGE_ORIENTATION)
    if not isinstance(position, list) or not isinstance(orientation, list):
        return None
    try:
        x, y, z = (float(v) for v in position)  # type: ignore[arg-type]
        rx, ry, rz, cx, cy, cz = (float(v) for v in orientation)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    distance = x * normal[0] + y * normal[1] + z * normal[2]
    return distance if math.isfinite(distance) else None


@dataclass(frozen=True)
class DatasetFinding:
    """One group of files at fault, and what is wrong with it."""

    group: str
    problem: str
    files: tuple[str, ...]

    @property
    def text(self) -> str:
        shown = ", ".join(self.files[:_SHOWN_FILES])
        more = f" and {len(self.files) - _SHOWN_FILES} more" if len(self.files) > _SHOWN_FILES else ""
        return f"{self.group}: {self.problem} ({shown}{more})"


@dataclass(frozen=True)
class DatasetVerdict:
    check: DatasetCheck
    groups: int
    """How many groups (values, series, splits…) the check looked at."""
    findings: tuple[DatasetFinding, ...]
    strict: bool = False
    """``--dicom-strict``: a warning check with findings fails too."""

    @property
    def status(self) -> str:
        """passed, failed, or warning (findings of a warning check, not strict)."""
        if not self.findings:
            return "passed"
        return "failed" if self.check.severity == "error" or self.strict else "warning"

    @property
    def message(self) -> str:
        groups = "1 group" if self.groups == 1 else f"{self.groups} groups"
        if not self.findings:
            return f"{self.check.type}: {groups} checked, no problem"
        shown = "; ".join(f.text for f in self.findings[:_SHOWN_PROBLEMS])
        more = f"; and {len(self.findings) - _SHOWN_PROBLEMS} more" if len(self.findings) > _SHOWN_PROBLEMS else ""
        count = len(self.findings)
        return f"{count} problem{'s' if count != 1 else ''} in {groups}: {shown}{more}"


def judge(
    checks: Sequence[DatasetCheck], files: Iterable[tuple[str, dict[str, list[Scalar]]]], strict: bool = False
) -> list[DatasetVerdict]:
    """Every check over every file's keys (``files``: dataset-relative path, keys)."""
    keyed: dict[str, list[tuple[str, list[Scalar]]]] = {check.id: [] for check in checks}
    for path, keys in files:
        for check_id, key in keys.items():
            if check_id in keyed:
                keyed[check_id].append((path, key))
    return [_judge(check, keyed[check.id], strict) for check in checks]


def involvement(verdicts: Iterable[DatasetVerdict]) -> dict[str, list[str]]:
    """Per file, the ids of the dataset checks that named it."""
    named: dict[str, list[str]] = defaultdict(list)
    for verdict in verdicts:
        for path in sorted({path for finding in verdict.findings for path in finding.files}):
            named[path].append(verdict.check.id)
    return dict(named)


def _judge(check: DatasetCheck, entries: Members, strict: bool) -> DatasetVerdict:
    groups: dict[Scalar, Members] = defaultdict(list)
    for path, key in entries:
        groups[key[0]].append((path, key))
    findings: list[DatasetFinding] = []
    for value, members in groups.items():
        findings += _group_findings(check, value, members)
    return DatasetVerdict(check, len(groups), tuple(findings), strict)


Members = list[tuple[str, list[Scalar]]]
"""The files of one group: (dataset-relative path, key)."""


def _group_findings(check: DatasetCheck, value: Scalar, members: Members) -> list[DatasetFinding]:
    paths = tuple(path for path, _ in members)
    if check.type in (UNIQUE, UNIQUE_PIXELS):
        if len(members) < 2:
            return []
        group = f"{check.targets[0]} {value}" if check.type == UNIQUE else f"pixel data {str(value)[:16]}"
        what = "the same value" if check.type == UNIQUE else "identical pixel data"
        return [DatasetFinding(group, f"{len(members)} files have {what}", paths)]
    if check.type == DISJOINT:
        splits = Counter(str(key[1]) for _, key in members)
        if len(splits) < 2:
            return []
        where = ", ".join(f"{split} ({_files(count)})" for split, count in sorted(splits.items()))
        smallest_first = tuple(path for _, path in sorted((splits[str(key[1])], path) for path, key in members))
        return [DatasetFinding(f"{check.targets[0]} {value}", f"in {len(splits)} splits: {where}", smallest_first)]
    group = f"{check.group_by or 'split'} {value}"
    if check.type == COUNT:
        if check.minimum is not None and len(members) < check.minimum:
            return [DatasetFinding(group, f"{_files(len(members))}, expected at least {check.minimum}", paths)]
        if check.maximum is not None and len(members) > check.maximum:
            return [DatasetFinding(group, f"{_files(len(members))}, expected at most {check.maximum}", paths)]
        return []
    return _consistency(check, group, members)


def _consistency(check: DatasetCheck, group: str, members: Members) -> list[DatasetFinding]:
    findings = []
    for index, target in enumerate(check.targets, start=3):
        values = Counter(key[index] for _, key in members)
        if len(values) > 1:
            usual = values.most_common(1)[0][0]
            seen = ", ".join(f"{_cell(v)} ({_files(n)})" for v, n in values.most_common())
            odd = tuple(path for path, key in members if key[index] != usual)
            findings.append(DatasetFinding(group, f"{target} differs: {seen}", odd))
    if check.instance_numbers:
        numbers = Counter(key[1] for _, key in members if key[1] is not None)
        for number, count in sorted((n, c) for n, c in numbers.items() if c > 1):
            same = tuple(path for path, key in members if key[1] == number)
            findings.append(DatasetFinding(group, f"InstanceNumber {number} appears {count} times", same))
    if check.slice_spacing is not None:
        findings += _spacing(check.slice_spacing, group, members)
    return findings


def _spacing(tolerance: float, group: str, members: Members) -> list[DatasetFinding]:
    """Slices evenly spaced along the normal: a repeated position is a duplicated slice, a gap
    wider than the series' usual spacing a missing one."""
    placed = sorted((float(key[2]), path) for path, key in members if isinstance(key[2], float))
    if len(placed) < 3:
        return []
    gaps = [(b[0] - a[0], a[1], b[1]) for a, b in itertools.pairwise(placed)]
    steps = [gap for gap, _, _ in gaps if gap > tolerance]
    if not steps:
        return []
    usual = statistics.median(steps)
    findings = []
    for gap, before, after in gaps:
        if gap <= tolerance:
            findings.append(
                DatasetFinding(group, "two slices at the same position (duplicated slice)", (before, after))
            )
        elif abs(gap - usual) > tolerance:
            missing = round(gap / usual) - 1
            problem = f"spacing {gap:.4g} mm where the series has {usual:.4g} mm"
            if missing >= 1:
                problem += f" ({missing} missing slice{'s' if missing > 1 else ''}?)"
            findings.append(DatasetFinding(group, problem, (before, after)))
    return findings


def _cell(value: Value) -> str:
    return "<missing>" if value is None else str(value)


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"
