"""What changed between two reports of the same dataset: per file, per key value, per rule.

Pure (no pandas, no pytest): the tables come from a workbook read back
(:func:`pytest_dicomqc.readback.tables_from_frames`) or from a running session alike. Everything
is counted here once; the outputs (terminal, Changes sheet) only format it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from pytest_dicomqc.record import (
    STATUS_CRASHED,
    STATUS_FAILED,
    STATUS_PASSED,
    STATUS_SKIPPED,
    STATUS_WAIVED,
    Scalar,
)

Row = Mapping[str, Scalar]
"""One sheet row, column -> value; every row of a table has every column of its sheet."""


@dataclass(frozen=True)
class ReportTables:
    """The two sheets a comparison reads, keyed by what names a row."""

    files: Mapping[str, Row]
    """Files sheet: path -> row."""
    rules: Mapping[str, Row]
    """Rules sheet: rule id -> row (id, severity, target, operator, expected, allow_missing, when, description,
    line)."""


@dataclass(frozen=True)
class ChangeKind:
    name: str
    one: str
    """How the summary line counts one change of this kind, and ``many`` several."""
    many: str
    meaning: str


CHANGE_KINDS: tuple[ChangeKind, ...] = (
    ChangeKind(
        "new failure",
        "new failure",
        "new failures",
        "a file that passed, was waived or skipped now failed or crashed",
    ),
    ChangeKind("fixed", "fixed", "fixed", "a file that failed or crashed now passed or is waived"),
    ChangeKind("added", "added", "added", "a file only in the new report"),
    ChangeKind("removed", "removed", "removed", "a file only in the old report"),
    ChangeKind(
        "status changed",
        "status changed",
        "statuses changed",
        "any other change of a file's status, e.g. passed -> not run",
    ),
    ChangeKind(
        "value changed",
        "value changed",
        "values changed",
        "a key column of a file changed (one change per column)",
    ),
    ChangeKind(
        "rules changed",
        "file failing other rules",
        "files failing other rules",
        "a file's failed_rules changed while its status did not",
    ),
    ChangeKind("rule added", "rule added", "rules added", "a rule only in the new report's Rules sheet"),
    ChangeKind("rule removed", "rule removed", "rules removed", "a rule only in the old report's Rules sheet"),
    ChangeKind(
        "rule changed",
        "rule setting changed",
        "rule settings changed",
        "a column of a rule's Rules-sheet row changed (one change per column; its line is not compared)",
    ),
)
"""Every kind of change, in the order changes are listed and counted."""
(
    NEW_FAILURE,
    FIXED,
    ADDED,
    REMOVED,
    STATUS_CHANGED,
    VALUE_CHANGED,
    RULES_CHANGED,
    RULE_ADDED,
    RULE_REMOVED,
    RULE_CHANGED,
) = (kind.name for kind in CHANGE_KINDS)
_ORDER = {kind.name: index for index, kind in enumerate(CHANGE_KINDS)}

_STATUS_KINDS: dict[tuple[Scalar, Scalar], str] = {
    **dict.fromkeys(
        itertools.product((STATUS_PASSED, STATUS_WAIVED, STATUS_SKIPPED), (STATUS_FAILED, STATUS_CRASHED)), NEW_FAILURE
    ),
    **dict.fromkeys(itertools.product((STATUS_FAILED, STATUS_CRASHED), (STATUS_PASSED, STATUS_WAIVED)), FIXED),
}
"""(old status, new status) -> kind; any other change of status is ``status changed``."""

COMPARED_COLUMNS = (
    "dtype",
    "rows",
    "columns",
    "frames",
    "ImageType",
    "transfer_syntax",
    "Modality",
    "PhotometricInterpretation",
    "BitsStored",
)
"""Files-sheet columns whose change a training loader feels even when the file still passes."""
UNCOMPARED_RULE_COLUMNS = frozenset({"line"})
"""Where a rule stands in its file moves whenever a rule above it is added or removed."""
STATUS, FAILED_RULES = "status", "failed_rules"


@dataclass(frozen=True)
class Change:
    kind: str
    path: str
    """The file's path; the rule id for the rule kinds."""
    field: str
    old: Scalar
    """``None``: absent from the old report (or an empty cell); likewise ``new``."""
    new: Scalar
    note: str = ""
    """For a change of status: the rules failing on the failing side (terminal lines show it)."""


@dataclass(frozen=True)
class Comparison:
    changes: tuple[Change, ...]
    counts: dict[str, int] = field(init=False)
    """Changes per kind, every kind, in :data:`CHANGE_KINDS` order."""

    def __post_init__(self) -> None:
        counts = dict.fromkeys(_ORDER, 0)
        for change in self.changes:
            counts[change.kind] += 1
        object.__setattr__(self, "counts", counts)

    @property
    def regressions(self) -> int:
        return self.counts[NEW_FAILURE]

    @property
    def exit_status(self) -> int:
        """pytest's: 1 when a file that passed (or was waived or skipped) now fails, else 0."""
        return 1 if self.regressions else 0


def compare(old: ReportTables, new: ReportTables) -> Comparison:
    changes = [*_file_changes(old.files, new.files), *_rule_changes(old.rules, new.rules)]
    changes.sort(key=lambda change: (_ORDER[change.kind], change.path))  # stable: columns keep their order
    return Comparison(tuple(changes))


def _file_changes(old: Mapping[str, Row], new: Mapping[str, Row]) -> list[Change]:
    changes = [
        Change(ADDED, path, STATUS, None, new[path].get(STATUS), _text(new[path].get(FAILED_RULES)))
        for path in new.keys() - old.keys()
    ]
    changes += [Change(REMOVED, path, STATUS, old[path].get(STATUS), None) for path in old.keys() - new.keys()]
    for path in old.keys() & new.keys():
        before, after = old[path], new[path]
        if before.get(STATUS) != after.get(STATUS):
            kind = _STATUS_KINDS.get((before.get(STATUS), after.get(STATUS)), STATUS_CHANGED)
            failing = before if kind == FIXED else after
            changes.append(
                Change(kind, path, STATUS, before.get(STATUS), after.get(STATUS), _text(failing.get(FAILED_RULES)))
            )
        elif not _same(before.get(FAILED_RULES), after.get(FAILED_RULES)):
            changes.append(Change(RULES_CHANGED, path, FAILED_RULES, before.get(FAILED_RULES), after.get(FAILED_RULES)))
        changes += [
            Change(VALUE_CHANGED, path, column, before[column], after[column])
            for column in COMPARED_COLUMNS
            if column in before and column in after and not _same(before[column], after[column])
        ]
    return changes


def _rule_changes(old: Mapping[str, Row], new: Mapping[str, Row]) -> list[Change]:
    changes = [Change(RULE_ADDED, rule_id, "", None, None) for rule_id in new.keys() - old.keys()]
    changes += [Change(RULE_REMOVED, rule_id, "", None, None) for rule_id in old.keys() - new.keys()]
    for rule_id in old.keys() & new.keys():
        before, after = old[rule_id], new[rule_id]
        changes += [
            Change(RULE_CHANGED, rule_id, column, before[column], value)
            for column, value in after.items()
            if column not in UNCOMPARED_RULE_COLUMNS and column in before and not _same(before[column], value)
        ]
    return changes


def _same(old: Scalar, new: Scalar) -> bool:
    """Equal, also when one report holds the value as text: a column with one text cell reads back as text."""
    if old == new:
        return True
    return old is not None and new is not None and (type(old) is str) != (type(new) is str) and str(old) == str(new)


def _text(value: Scalar) -> str:
    return "" if value is None else str(value)


def summary_line(comparison: Comparison) -> str:
    counted = [
        f"{count} {kind.one if count == 1 else kind.many}"
        for kind in CHANGE_KINDS
        if (count := comparison.counts[kind.name])
    ]
    return "dicomqc diff: " + (", ".join(counted) or "no change")


def terminal_lines(comparison: Comparison, limit: int | None = 20, rest: str = "Changes sheet") -> list[str]:
    """The summary line, then the first ``limit`` changes (``None``: all), then how many more are in ``rest``."""
    shown = comparison.changes if limit is None else comparison.changes[:limit]
    lines = [summary_line(comparison), *map(change_line, shown)]
    if len(shown) < len(comparison.changes):
        lines.append(f"… and {len(comparison.changes) - len(shown)} more ({rest})")
    return lines


def change_line(change: Change) -> str:
    """``new failure data/a.dcm: passed -> failed (original-image)``,
    ``value changed data/b.dcm dtype: uint16 -> int16``."""
    line = f"{change.kind} {change.path}"
    if change.field not in ("", STATUS):
        line += f" {change.field}"
    sides = {ADDED: (change.new,), REMOVED: (change.old,)}.get(change.kind, (change.old, change.new))
    if any(side is not None for side in sides):
        line += ": " + " -> ".join("(empty)" if side is None else str(side) for side in sides)
    return f"{line} ({change.note})" if change.note else line


CHANGES_HEADER = ("change", "path", "field", "old", "new")


def sheet_rows(comparison: Comparison) -> list[list[Scalar]]:
    """The Changes sheet's rows (:data:`CHANGES_HEADER`): one per change, in the comparison's order."""
    return [[c.kind, c.path, c.field, c.old, c.new] for c in comparison.changes]


COMPARED_NAMES = (STATUS, FAILED_RULES, *COMPARED_COLUMNS)
"""Every Files-sheet column :func:`compare` reads."""


def compared(tables: ReportTables) -> ReportTables:
    """Only what :func:`compare` reads of the Files sheet: a baseline read in another process
    crosses back small."""
    names = COMPARED_NAMES
    files = {path: {name: row[name] for name in names if name in row} for path, row in tables.files.items()}
    return ReportTables(files=files, rules=tables.rules)
