"""The dataset by series: triage happens by series (a scanner protocol, an export), not by file.

One :class:`SeriesTally` per series, a SeriesInstanceUID in one folder, in the order its first
file comes. Pure: the conclusion's rows in, tallies out; the Series sheet formats them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pytest_dicomqc.columns import folder_of, series_label
from pytest_dicomqc.record import FAIL, STATUS_CRASHED, STATUS_FAILED, STATUS_WAIVED, WARN, ReportRow, Scalar

_COUNTED = ("Modality", "StudyInstanceUID", "PixelSpacing", "SliceThickness")
SERIES_VALUES = ("SeriesInstanceUID", "frames", "rows", "columns", *_COUNTED)
"""The values of a file that its series' row reads."""
SHOWN_VALUES = 3
"""Distinct values a cell lists (most common first) before it says how many more there are."""


@dataclass
class _Builder:
    label: str
    folder: str
    uid: str
    files: int = 0
    failed: int = 0
    warned: int = 0
    waived: int = 0
    slices: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    values: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, row: ReportRow, named: Sequence[str]) -> None:
        self.files += 1
        self.failed += row.status in (STATUS_FAILED, STATUS_CRASHED)
        self.waived += row.status == STATUS_WAIVED
        if named:  # Counter.update costs even when empty: most files are named by nothing, break no rule
            self.problems.update(named)
        record = row.record
        if record is None:
            return
        results = record.results
        self.warned += WARN in results.values()
        failing = [rule for rule, result in results.items() if result in (FAIL, WARN)]
        if failing:
            self.rules.update(failing)
        values = record.values
        frames = values.get("frames")
        self.slices += frames if type(frames) is int else 0
        rows, columns = values.get("rows"), values.get("columns")
        self._count("size", f"{rows}x{columns}" if rows is not None and columns is not None else None)
        for name in _COUNTED:
            self._count(name, values.get(name))

    def _count(self, name: str, value: Scalar) -> None:
        if value is not None and value != "":
            counter = self.values.get(name)
            if counter is None:  # not setdefault: a Counter made per file costs a third of the tally
                counter = self.values[name] = Counter()
            counter[str(value)] += 1

    def tally(self) -> SeriesTally:
        return SeriesTally(
            label=self.label,
            folder=self.folder,
            uid=self.uid,
            files=self.files,
            failed=self.failed,
            warned=self.warned,
            waived=self.waived,
            slices=self.slices,
            rules=tuple(self.rules.most_common()),
            problems=tuple(self.problems.most_common()),
            values={name: tuple(counter.most_common()) for name, counter in self.values.items()},
        )


@dataclass(frozen=True)
class SeriesTally:
    label: str
    """``<folder> | <SeriesInstanceUID>``, as the Files sheet's ``series`` column says it."""
    folder: str
    uid: str
    files: int
    failed: int
    """Files failed or crashed."""
    warned: int
    """Files with a warning rule that did not hold."""
    waived: int
    slices: int
    """Frames over the series' files: a multi-frame file counts its frames."""
    rules: tuple[tuple[str, int], ...]
    """Rule id and the files of the series it failed or warned for, most first."""
    problems: tuple[tuple[str, int], ...]
    """Dataset check id and the files of the series it named, most first."""
    values: Mapping[str, tuple[tuple[str, int], ...]]
    """Per field (Modality, StudyInstanceUID, size, PixelSpacing, SliceThickness) the distinct
    values with their file counts, most common first."""

    def shown(self, name: str) -> str:
        """A field's distinct values, most common first: ``512x512 (30), 256x256 (2)``, one
        value alone without its count."""
        values = self.values.get(name, ())
        if len(values) == 1:
            return values[0][0]
        text = ", ".join(f"{value} ({count:,})" for value, count in values[:SHOWN_VALUES])
        more = len(values) - SHOWN_VALUES
        return f"{text}, … {more:,} more" if more > 0 else text


def tally_series(rows: Iterable[ReportRow], named: Mapping[str, Sequence[str]]) -> tuple[SeriesTally, ...]:
    builders: dict[tuple[str, str], _Builder] = {}
    for row in rows:
        uid = row.record.values.get("SeriesInstanceUID") if row.record is not None else None
        key = (folder_of(row.path), str(uid) if uid not in (None, "") else "")
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = _Builder(series_label(row.path, uid), key[0], key[1])
        builder.add(row, named.get(row.path, ()))
    return tuple(builder.tally() for builder in builders.values())
