"""Dataset checks: what no single file shows. Duplicates, split leakage, series consistency, sizes.

Two halves, both pure. :func:`keys_of` runs where a file is read and keeps only the small key
each configured check needs (identifying values hashed there, so they never travel). :func:`judge`
runs once on the controller over every file's keys and names the groups and files at fault.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import posixpath
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

from pytest_dicomqc.record import Scalar, Value, display, is_empty
from pytest_dicomqc.rules.evaluate import Facts, Unread, applies
from pytest_dicomqc.rules.globs import glob_matches
from pytest_dicomqc.rules.limits import clip
from pytest_dicomqc.rules.model import (
    CONSISTENT,
    COUNT,
    DEFAULT_SPLIT,
    DISJOINT,
    IMAGE_ORIENTATION,
    IMAGE_POSITION,
    INSTANCE_NUMBER,
    UNIQUE,
    UNIQUE_PIXELS,
    DatasetCheck,
    Target,
    Waiver,
)
from pytest_dicomqc.rules.regex import Regex

_SHOWN_FILES = 3
_SHOWN_PROBLEMS = 3
_SAME_POSITION = 0.001
"""mm: slices closer than this are at one position, whatever the tolerance."""
_ROUNDING = 1e-9
"""Slack for positions written with few decimals: 0.63 - 0.62 is 0.0100000000000026."""
_SAME_COSINE = 1e-3
"""Direction cosines this close are one orientation (-0 and 0, float noise)."""

DatasetStatus = Literal["passed", "failed", "warning", "waived", "empty"]
"""A check's verdict; ``empty``: no file took part, so nothing was compared (see :attr:`DatasetVerdict.reason`)."""
DATASET_STATUSES: tuple[DatasetStatus, ...] = get_args(DatasetStatus)

LeftOut = Literal["when", "split", "value", "pixels"]
"""Why a file took no part in a check: ``when`` did not hold; its path matched no split; the value
the check needs (its tag, or its ``group_by`` tag) is missing; its pixel data could not be decoded."""
LEFT_OUT_REASONS: tuple[LeftOut, ...] = get_args(LeftOut)
_UNKNOWN = "unknown"
"""A file with no key at all for a check (keys not made by :func:`keys_of`): the reason is not known."""
_NONE, _SOME, _COUNTED = range(3)
_LEFT_OUT_TEXT = {
    # why: (no file took part, the files left out all for this reason, counted beside other reasons)
    "when": ("'when' held for no file", "'when' does not hold", "'when' does not hold for {files}"),
    "split": (
        "no path matched the split pattern {pattern}",
        "path matches no split pattern {pattern}",
        "{paths} matching no split pattern {pattern}",
    ),
    "value": ("no DICOM file has {tag}", "no {tag}", "{files} without {tag}"),
    "pixels": (
        "no DICOM file has decodable pixel data",
        "no decodable pixel data",
        "{files} without decodable pixel data",
    ),
    _UNKNOWN: (
        "no value to check, or 'when' does not hold",
        "no value to check, or 'when' does not hold",
        "{files} with no value to check, or 'when' does not hold",
    ),
}
"""What a data manager reads; ``{pattern}``: the split pattern as the rules file wrote it."""
_LEFT_OUT_KEYS: dict[str, list[Scalar]] = {why: [None, why] for why in LEFT_OUT_REASONS}
"""The key of a file that takes no part, one list per reason shared by every such file (never mutated)."""


def keys_of(checks: Sequence[DatasetCheck], facts: Facts, relpath: str, pixel_hash: str) -> dict[str, list[Scalar]]:
    """Per check id, what this file contributes: its key, or ``[None, why]`` where it takes no part
    (``why``: one of :data:`LEFT_OUT_REASONS`). A key taking part never starts with ``None``."""
    keys: dict[str, list[Scalar]] = {}
    for check in checks:
        key = _key(check, facts, relpath, pixel_hash) if applies(check.when, facts) else "when"
        keys[check.id] = _LEFT_OUT_KEYS[key] if isinstance(key, str) else key
    return keys


def _key(check: DatasetCheck, facts: Facts, relpath: str, pixel_hash: str) -> list[Scalar] | LeftOut:
    if check.type == UNIQUE_PIXELS:
        return [pixel_hash] if pixel_hash else "pixels"
    if check.type == UNIQUE:
        value = _shown(check.targets[0], facts)
        return "value" if value is None else [value]
    if check.type == DISJOINT:
        # always a pseudonym: a value that must not cross splits identifies a patient or study
        split = split_of(check.split, relpath)
        if split is None:
            return "split"  # before the value: a dataset without split folders says so, whatever its tags
        value = _shown(check.targets[0], facts, hidden=True)
        return "value" if value is None else [value, split]
    group: Scalar
    if check.group_by is None:
        group = split_of(check.split, relpath)
        if group is None:
            return "split"
    else:
        group = _shown(check.group_by, facts)
        if group is None:
            return "value"
    if check.type == COUNT:
        return [group]
    if any(isinstance(facts.lookup(target), Unread) for target in check.targets):
        return "pixels"  # undecodable pixels: the file fails on its own already
    instance = facts.lookup(INSTANCE_NUMBER)
    position, orientation = _slice_position(facts) if check.slice_spacing is not None else (None, None)
    return [
        group,
        instance if type(instance) is int else None,
        position,
        orientation,
        *(_shown(target, facts) for target in check.targets),
    ]


def split_of(pattern: Regex, relpath: str) -> str | None:
    """The split a dataset-relative path lies in: the pattern's first group (else its match) at the start."""
    return pattern.prefix(relpath)


def _shown(target: Target, facts: Facts, hidden: bool = False) -> Scalar:
    """A value as it is grouped and shown: text as DICOM writes it; identifying values (or all,
    if ``hidden``) as a :func:`pseudonym`."""
    value = facts.lookup(target)
    if isinstance(value, Unread) or is_empty(value):
        return None
    text = display(value)
    if target.identifying or hidden:
        return pseudonym(str(text))
    return text


def pseudonym(text: str) -> str:
    """A stable stand-in for an identifying value: equal values get equal pseudonyms, and the
    value itself never reaches the report. A hash, not anonymisation: short IDs can be guessed."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def _slice_position(facts: Facts) -> tuple[float | None, str | None]:
    """Position along the slice normal (mm), ImagePositionPatient · (row × column cosines), and
    the orientation it is measured along (cosines to 4 places); ``None`` where either is unusable."""
    position, orientation = facts.lookup(IMAGE_POSITION), facts.lookup(IMAGE_ORIENTATION)
    if not isinstance(position, list) or not isinstance(orientation, list):
        return None, None
    try:
        x, y, z = (float(v) for v in position)  # type: ignore[arg-type]
        rx, ry, rz, cx, cy, cz = (float(v) for v in orientation)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, None
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    length = math.hypot(*normal)
    if not math.isfinite(length) or length < 1e-6:
        return None, None  # no plane (zero or parallel cosines)
    distance = (x * normal[0] + y * normal[1] + z * normal[2]) / length
    if not math.isfinite(distance):
        return None, None
    return distance, "\\".join(f"{v:.4f}" for v in (rx, ry, rz, cx, cy, cz))


@dataclass(frozen=True)
class DatasetFinding:
    """One group of files at fault, and what is wrong with it."""

    group: str
    problem: str
    files: tuple[str, ...]
    waiver: str = ""
    """Id of the waiver that accepted this problem: its path glob matches every file named."""

    def text(self, files: int = _SHOWN_FILES) -> str:
        shown = ", ".join(self.files[:files])
        more = f" and {len(self.files) - files} more" if len(self.files) > files else ""
        named = f" ({shown}{more})" if self.files else ""  # a count below min in no file names none
        waived = f" [waived: {self.waiver}]" if self.waiver else ""
        return f"{self.group}: {self.problem}{named}{waived}"


_GROUP_NOUN = {UNIQUE: "value", UNIQUE_PIXELS: "image", DISJOINT: "value"}


@dataclass(frozen=True)
class DatasetVerdict:
    check: DatasetCheck
    groups: int
    """How many groups (values, images, series, splits…) the check looked at."""
    findings: tuple[DatasetFinding, ...]
    files: int = 0
    """DICOM files that took part."""
    left_out: int = 0
    """DICOM files that did not: ``when`` did not hold, or the value (or split) the check needs is missing."""
    strict: bool = False
    """``--dicom-strict``: a warning check with findings fails too, and so does an empty one."""
    left_out_why: tuple[tuple[str, int], ...] = ()
    """Why the ``left_out`` files took no part: (one of :data:`LEFT_OUT_REASONS`, or ``unknown``
    for a file with no key for the check; how many files), in that order, counts above 0."""

    @property
    def status(self) -> DatasetStatus:
        """passed, failed, warning (problems of a warning check, not strict), waived (every
        problem accepted by a waiver), or empty (it checked nothing; failed under strict)."""
        if self.findings:
            if all(finding.waiver for finding in self.findings):
                return "waived"
            return "failed" if self.check.severity == "error" or self.strict else "warning"
        if self.checked_nothing:
            return "failed" if self.strict else "empty"
        return "passed"

    @property
    def checked_nothing(self) -> bool:
        """No file took part, and so no problem was found: the check proves nothing."""
        return self.files == 0 and not self.findings

    @property
    def reason(self) -> str:
        """Why no file took part ("" when some did), in the words of the rules file:
        "no path matched the split pattern '(train|test)/'", "no DICOM file has SOPInstanceUID"…"""
        if self.files:
            return ""
        if not self.left_out:
            return "no DICOM file was checked"
        return self._why(_NONE)

    @property
    def scope(self) -> str:
        """How much was checked: "180 files, 179 distinct values; 10 files left out (no PatientID)";
        with no file, "0 files; 3 files left out (…)" (the message says why in full)."""
        noun = _GROUP_NOUN.get(self.check.type, "group")
        scope = _files(self.files)
        if self.files:
            scope += f", {_count(self.groups, ('distinct ' if noun != 'group' else '') + noun)}"
        if self.left_out:
            scope += f"; {_files(self.left_out)} left out ({self._why(_SOME)})"
        return scope

    @property
    def message(self) -> str:
        """One line: the scope when all is well, why when no file took part, else the first problems."""
        if not self.findings:
            return f"no problem in {self.scope}" if self.files else f"no file took part: {self.reason}"
        shown = "; ".join(f.text() for f in self.findings[:_SHOWN_PROBLEMS])
        more = f"; and {len(self.findings) - _SHOWN_PROBLEMS} more" if len(self.findings) > _SHOWN_PROBLEMS else ""
        return f"{_count(len(self.findings), 'problem')} in {self.scope}: {shown}{more}"

    def _why(self, form: int) -> str:
        """Why the left-out files took no part: one reason in ``form`` (:data:`_NONE` or
        :data:`_SOME`), several counted one by one."""
        pattern = self.check.split.pattern
        if self.check.type in (COUNT, CONSISTENT):
            needed = str(self.check.group_by or "")
        else:
            needed = str(self.check.targets[0]) if self.check.targets else ""
        texts = [
            (_LEFT_OUT_TEXT.get(why) or _LEFT_OUT_TEXT[_UNKNOWN])[form if len(self.left_out_why) == 1 else _COUNTED]
            for why, _ in self.left_out_why
        ] or [_LEFT_OUT_TEXT[_UNKNOWN][form]]
        return ", ".join(
            text.format(
                pattern=f"'{clip(pattern)}'" + (" (default)" if pattern == DEFAULT_SPLIT else ""),
                tag=needed,
                files=_files(count),
                paths=_count(count, "path"),
            )
            for text, (_, count) in zip(texts, self.left_out_why or ((_UNKNOWN, self.left_out),), strict=True)
        )

    @property
    def details(self) -> str:
        """How much is wrong, then every problem on a line of its own: the failure text (the
        workbook names every file)."""
        lines = [f"{_count(len(self.findings), 'problem')} in {self.scope}:"]
        lines += [f"  {finding.text(files=10)}" for finding in self.findings]
        return "\n".join(lines)


def judge(
    checks: Sequence[DatasetCheck],
    files: Iterable[tuple[str, dict[str, list[Scalar]]]],
    strict: bool = False,
    waivers: Sequence[Waiver] = (),
) -> list[DatasetVerdict]:
    """Every check over every DICOM file's keys (``files``: dataset-relative path, keys as
    :func:`keys_of` makes them; a file with no key for a check takes no part, for a reason unknown).

    A problem is waived by a waiver in force that covers the check and whose path glob matches
    every file the problem names (waivers by SOPInstanceUID are for file rules only)."""
    keyed: dict[str, list[tuple[str, list[Scalar]]]] = {check.id: [] for check in checks}
    why_left_out: dict[str, Counter[Scalar]] = {check.id: Counter() for check in checks}
    total = 0
    for path, keys in files:
        total += 1
        for check_id, key in keys.items():
            if check_id in keyed:
                if key and key[0] is None:
                    why_left_out[check_id][key[1] if len(key) > 1 else _UNKNOWN] += 1
                else:
                    keyed[check_id].append((path, key))
    in_force = [w for w in waivers if not w.expired and w.path is not None]
    return [_waive(_judge(check, keyed[check.id], total, strict, why_left_out[check.id]), in_force) for check in checks]


def _waive(verdict: DatasetVerdict, waivers: Sequence[Waiver]) -> DatasetVerdict:
    covering = [w for w in waivers if w.covers(verdict.check.id)]
    if not covering:
        return verdict

    def waiver_of(finding: DatasetFinding) -> str:
        if not finding.files:
            return ""  # a path glob accepts problems of the files it matches: a problem of no file is none
        matching = (w.id for w in covering if all(glob_matches(w.path or "", path) for path in finding.files))
        return next(matching, "")

    return replace(verdict, findings=tuple(replace(f, waiver=waiver_of(f)) for f in verdict.findings))


def waivers_used(verdicts: Iterable[DatasetVerdict]) -> Counter[str]:
    """Per waiver id, how many dataset problems it accepted."""
    return Counter(finding.waiver for verdict in verdicts for finding in verdict.findings if finding.waiver)


def involvement(verdicts: Iterable[DatasetVerdict]) -> dict[str, list[str]]:
    """Per file, the ids of the dataset checks that named it in a problem no waiver accepted."""
    named: dict[str, list[str]] = defaultdict(list)
    for verdict in verdicts:
        for path in sorted({path for finding in verdict.findings if not finding.waiver for path in finding.files}):
            named[path].append(verdict.check.id)
    return dict(named)


Members = list[tuple[str, list[Scalar]]]
"""The files of one group: (dataset-relative path, key)."""


def _judge(check: DatasetCheck, entries: Members, total: int, strict: bool, why: Counter[Scalar]) -> DatasetVerdict:
    groups: dict[Scalar, Members] = defaultdict(list)
    for path, key in entries:
        groups[key[0]].append((path, key))
    findings: list[DatasetFinding] = []
    for value, members in groups.items():
        findings += _group_findings(check, value, members)
    left_out = total - len(entries)
    why[_UNKNOWN] += left_out - why.total()  # files with no key for this check at all
    order = [*LEFT_OUT_REASONS, _UNKNOWN]
    known = tuple((str(w), n) for w, n in sorted(why.items(), key=lambda item: _rank(order, item[0])) if n > 0)
    verdict = DatasetVerdict(check, len(groups), tuple(findings), len(entries), left_out, strict, known)
    if check.type == COUNT and check.minimum and not entries:
        # no group at all is below any min: "0 files, expected at least 100"; the scope says why
        group = "split" if check.group_by is None else str(check.group_by)
        problem = f"0 files, expected at least {check.minimum}"
        verdict = replace(verdict, findings=(DatasetFinding(group, problem, ()),))
    return verdict


def _rank(order: list[str], why: Scalar) -> tuple[int, str]:
    return (order.index(why), "") if why in order else (len(order), str(why))


def _group_findings(check: DatasetCheck, value: Scalar, members: Members) -> list[DatasetFinding]:
    paths = tuple(path for path, _ in members)
    if check.type in (UNIQUE, UNIQUE_PIXELS):
        if len(members) < 2:
            return []
        group = f"{check.targets[0]} {value}" if check.type == UNIQUE else f"pixel data {_short_hash(value)}"
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
    folder = _folder(paths) if check.group_by is not None else ""
    if folder:
        group += f" ({folder})"
    if check.type == COUNT:
        if check.minimum is not None and len(members) < check.minimum:
            return [DatasetFinding(group, f"{_files(len(members))}, expected at least {check.minimum}", paths)]
        if check.maximum is not None and len(members) > check.maximum:
            return [DatasetFinding(group, f"{_files(len(members))}, expected at most {check.maximum}", paths)]
        return []
    return _consistency(check, group, members)


def _short_hash(value: Scalar) -> str:
    """A pixel hash as a group is named: its algorithm and its first 16 hex digits (``xxh3-128:0f1e…``)."""
    algorithm, colon, digits = str(value).rpartition(":")
    return f"{algorithm}{colon}{digits[:16]}"


def _consistency(check: DatasetCheck, group: str, members: Members) -> list[DatasetFinding]:
    findings = []
    for index, target in enumerate(check.targets, start=4):
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
    """Slices evenly spaced along their normal: slices at one position are duplicated, a gap
    unlike the series' usual spacing is a missing slice (or an extra one)."""
    unplaced = tuple(path for path, key in members if not isinstance(key[2], float))
    if unplaced and (len(unplaced) < len(members) or len(members) >= 3):  # a slice or two alone: no stack
        problem = f"{_files(len(unplaced))} without a usable ImagePositionPatient/ImageOrientationPatient"
        return [DatasetFinding(group, problem + ": slice spacing not checked", unplaced)]
    if unplaced:
        return []
    usual_orientation = _cosines(Counter(key[3] for _, key in members).most_common(1)[0][0])
    odd = tuple(path for path, key in members if not _same_orientation(_cosines(key[3]), usual_orientation))
    if odd:
        problem = "ImageOrientationPatient differs from the series' usual one: slice spacing not checked"
        return [DatasetFinding(group, problem, odd)]
    same = max(tolerance, _SAME_POSITION)
    placed = sorted((float(key[2]), path) for path, key in members)  # type: ignore[arg-type]
    stacks: list[list[tuple[float, str]]] = []
    for slice_ in placed:
        if stacks and slice_[0] - stacks[-1][-1][0] <= same:
            stacks[-1].append(slice_)
        else:
            stacks.append([slice_])
    findings = [
        DatasetFinding(group, f"{len(stack)} slices at position {stack[0][0]:.4g} mm (duplicated slice)", _paths(stack))
        for stack in stacks
        if len(stack) > 1
    ]
    steps = [(b[0][0] - a[-1][0], a[-1][1], b[0][1]) for a, b in itertools.pairwise(stacks)]
    if len(steps) < 2:
        return findings
    counts = Counter(round(step, 3) for step, _, _ in steps)
    usual = max(counts, key=lambda step: (counts[step], -step))  # the most common step; on a tie the smallest
    for step, before, after in steps:
        if abs(step - usual) > tolerance + _ROUNDING:
            problem = f"spacing {step:.4g} mm where the series has {usual:.4g} mm"
            missing = round(step / usual) - 1
            if missing >= 1:
                problem += f" ({missing} missing slice{'s' if missing > 1 else ''}?)"
            findings.append(DatasetFinding(group, problem, (before, after)))
    return findings


def _cosines(text: Scalar) -> tuple[float, ...]:
    return tuple(float(value) for value in str(text).split("\\"))


def _same_orientation(cosines: tuple[float, ...], usual: tuple[float, ...]) -> bool:
    return all(abs(a - b) <= _SAME_COSINE for a, b in zip(cosines, usual, strict=True))


def _paths(stack: list[tuple[float, str]]) -> tuple[str, ...]:
    return tuple(path for _, path in stack)


def _folder(paths: tuple[str, ...]) -> str:
    """Where a group's files lie, as a hint beside a long UID: their common folder ("" if none)."""
    folders = {path.rpartition("/")[0] for path in paths}
    common = folders.pop() if len(folders) == 1 else posixpath.commonpath(list(folders))
    return f"{common}/" if common else ""


def _count(count: int, noun: str) -> str:
    return f"1 {noun}" if count == 1 else f"{count} {noun}s"


def _cell(value: Value) -> str:
    return "<missing>" if value is None else str(value)


def _files(count: int) -> str:
    return _count(count, "file")
