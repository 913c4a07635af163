"""The one schema shared by items, the xdist wire and the report: a file's QC result.

Everything in a record is an exact builtin (``str``, ``int``, ``float``, ``bool``, ``None``) so
that it crosses the xdist boundary: execnet refuses subclasses such as pydicom's ``DSfloat``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

Scalar: TypeAlias = str | int | float | bool | None
Value: TypeAlias = Scalar | list[Scalar]
"""A tag's value as rules see it: multi-valued tags are lists."""

ITEM_NAME = "dicomqc"
"""The name of every dataset item, its marker, and the first part of every dataset result's node id."""
PIXEL_FIELDS = ("rows", "columns", "frames", "samples_per_pixel", "dtype", "mean", "min", "max")
FILE_COLUMNS = ("transfer_syntax", "SOPClass", "size_bytes", "notes")
"""Columns of the Files sheet besides tags and rules; no rule id may take one of these names."""

Kind = Literal["dicom", "unreadable", "non-dicom"]
"""What a file is: parsed as DICOM, claims to be DICOM but cannot be parsed, or anything else."""
KINDS: tuple[Kind, ...] = get_args(Kind)
KIND_DICOM, KIND_UNREADABLE, KIND_NON_DICOM = KINDS

Status = Literal["passed", "failed", "skipped", "waived", "not run", "crashed"]
"""A file's status in the report: what pytest said of its item, or why it has none."""
STATUSES: tuple[Status, ...] = get_args(Status)
STATUS_PASSED, STATUS_FAILED, STATUS_SKIPPED, STATUS_WAIVED, STATUS_NOT_RUN, STATUS_CRASHED = STATUSES

Severity: TypeAlias = Literal["error", "warning"]
"""How much a rule's failure counts: an error fails the file, a warning is reported only."""
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
FindingSeverity: TypeAlias = Severity | Literal["threshold"]
"""A finding's: its rule's severity, or ``threshold`` when it counts against the rule's
``max_failing`` over the dataset instead of failing the file."""

PASS = "PASS"  # noqa: S105 - a result cell, not a password
FAIL = "FAIL"
WARN = "WARN"
NOT_APPLICABLE = "N/A"
WAIVED = "WAIVED"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that did not hold for one file."""

    rule_id: str
    severity: FindingSeverity
    observed: str
    expected: str
    message: str
    waiver: str = ""
    """Id of the waiver that accepted this finding, if any."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What the plugin learned about one file; ``verdict`` is what its item reports: passed,
    failed, skipped or waived."""

    path: str
    kind: Kind
    verdict: Status
    error: str
    values: dict[str, Scalar]
    results: dict[str, str]
    findings: tuple[Finding, ...]
    waivers: tuple[str, ...] = ()
    """Ids of the waivers that accepted a finding of this file."""
    dataset: dict[str, list[Scalar]] = field(default_factory=dict)
    """Per dataset check id, this file's key (identifying values hashed); absent where it does not apply."""

    @property
    def failed_rules(self) -> list[str]:
        return [rule_id for rule_id, result in self.results.items() if result == FAIL]

    @property
    def warned_rules(self) -> list[str]:
        return [rule_id for rule_id, result in self.results.items() if result == WARN]

    def to_wire(self) -> dict[str, Any]:
        """Plain dict of exact builtins, safe for execnet and JSON."""
        return {
            "path": self.path,
            "kind": self.kind,
            "verdict": self.verdict,
            "error": self.error,
            "values": dict(self.values),
            "results": dict(self.results),
            "findings": [[f.rule_id, f.severity, f.observed, f.expected, f.message, f.waiver] for f in self.findings],
            "waivers": list(self.waivers),
            "dataset": {check_id: list(key) for check_id, key in self.dataset.items()},
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any], share: bool = True) -> FileRecord:
        """The record again, its texts shared with the records before it (see :func:`shared`);
        with ``share=False`` it keeps the wire's own objects: a record written and dropped at once
        (the merge's writing process) needs no sharing."""
        if not share:
            return cls(
                wire["path"],
                wire["kind"],
                wire["verdict"],
                wire["error"],
                wire["values"],
                wire["results"],
                tuple(Finding(*f) for f in wire["findings"]),
                tuple(wire["waivers"]),
                wire["dataset"],
            )
        return cls(
            path=wire["path"],
            kind=shared(wire["kind"]),
            verdict=shared(wire["verdict"]),
            error=wire["error"],
            values={shared(name): shared(value) for name, value in wire["values"].items()},
            results={shared(rule): shared(result) for rule, result in wire["results"].items()},
            findings=tuple(Finding(*f) for f in wire["findings"]),
            waivers=tuple(wire["waivers"]),
            dataset=_shared_keys(wire["dataset"]),
        )


SHARED_TEXT_LENGTH = 64
SHARED_TEXTS = 100_000
_shared: dict[str, str] = {}


def shared(value: Any) -> Any:
    """One object per distinct short text among the records the controller keeps: a dataset
    repeats most values in every file (column names, modality, ImageType, dtype, transfer
    syntax, PASS), and each record arrives unpickled or parsed with copies of its own. Bounded:
    once ``SHARED_TEXTS`` texts are known (unique UIDs fill it), new ones are kept as they come."""
    if type(value) is not str or len(value) > SHARED_TEXT_LENGTH:
        return value
    known = _shared.get(value)
    if known is not None:
        return known
    if len(_shared) < SHARED_TEXTS:
        _shared[value] = value
    return value


def _shared_keys(dataset: dict[str, list[Any]]) -> dict[str, list[Scalar]]:
    """Dataset keys with their texts shared: check ids, pseudonyms of patients, split names."""
    return {shared(check_id): [shared(part) for part in key] for check_id, key in dataset.items()}


_interned_dicts: dict[tuple[tuple[str, type, Any], ...], dict[str, Any]] = {}


def _interned(mapping: dict[str, Any]) -> dict[str, Any]:
    """One dict per distinct content, its texts shared (:func:`shared`), among the rows a merge
    keeps: a series' files have the same kept values, most files the same rule results. Bounded
    like :func:`shared`. The dicts of a frozen record are never changed, so sharing one is safe."""
    key = tuple((name, type(value), value) for name, value in mapping.items())  # 1, 1.0 and True differ
    known = _interned_dicts.get(key)
    if known is None:
        known = {shared(name): shared(value) for name, value in mapping.items()}
        if len(_interned_dicts) < SHARED_TEXTS:
            _interned_dicts[key] = known
    return known


def forget_shared() -> None:
    """At the end of a session: the next one (an in-process ``pytest.main``) shares its own."""
    _shared.clear()
    _interned_dicts.clear()


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One line of the Files sheet: a file, what pytest said of it, and its record if it has one."""

    path: str
    status: Status
    record: FileRecord | None = None
    error: str = ""
    earlier: str = ""
    """When the file was not checked in this run: the time (ISO 8601) of the earlier run whose
    result, still valid for the file as it is, stands in (from the cache)."""

    def to_wire(self) -> dict[str, Any]:
        """Plain dict of exact builtins: the row in a part file (``--dicom-records``)."""
        record = self.record.to_wire() if self.record is not None else None
        return {
            "path": self.path,
            "status": self.status,
            "error": self.error,
            "earlier": self.earlier,
            "record": record,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any], kept: Collection[str] | None = None) -> ReportRow:
        """The row again, whole, to be written and dropped; with ``kept``, only what a conclusion
        reads (the values named, no findings, texts shared): what a merge keeps of each file once
        its row is written, so that 10^6 files fit in memory."""
        status = wire["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        record = wire["record"]
        if record is None:
            kept_record = None
        elif kept is None:
            kept_record = FileRecord.from_wire(record, share=False)
        else:
            values = record["values"]
            path = wire["path"]
            kept_record = FileRecord(
                path if record["path"] == path else record["path"],  # one string, not two equal ones
                shared(record["kind"]),
                shared(record["verdict"]),
                record["error"],
                _interned({name: values[name] for name in kept if name in values}),
                _interned(record["results"]),
                (),
                tuple(record["waivers"]),
                _shared_keys(record["dataset"]),
            )
        return cls(wire["path"], shared(status), kept_record, wire["error"], wire["earlier"])


def display(value: Value) -> Scalar:
    """One cell's worth: multi-values joined with ``\\`` as DICOM writes them."""
    if isinstance(value, list):
        return "\\".join("" if item is None else str(item) for item in value)
    return value


def is_empty(value: Value) -> bool:
    return value is None or value == "" or value == []


def failure_text(record: FileRecord) -> str:
    """The compact failure shown by pytest: one line per reason, observed vs expected.

    The first line is the most useful one, since pytest's short summary shows only it.
    """
    lines = []
    if record.error:
        lines.append(f"{record.kind}: {record.error}")
    elif record.kind == KIND_NON_DICOM:
        lines.append(f"non-DICOM file ({record.values.get('notes')}) and the rules say non_dicom: fail")
    results = record.results
    lines += [f"{f.rule_id}: {f.message}" for f in record.findings if results.get(f.rule_id) == FAIL]
    warnings = [f"{f.rule_id} ({f.observed})" for f in record.findings if results.get(f.rule_id) == WARN]
    if warnings:
        lines.append("warnings: " + ", ".join(warnings))
    waived = [f"{f.rule_id} ({f.waiver})" for f in record.findings if f.waiver]
    if waived:
        lines.append("waived: " + ", ".join(waived))
    return "\n".join(lines)


def skip_reason(record: FileRecord) -> str:
    """Why a file is skipped (not DICOM, and the rules say skip)."""
    return f"{record.kind}: {record.values.get('notes') or 'not a DICOM file'}"


def waived_reason(record: FileRecord) -> str:
    """Which findings waivers accepted, for a file that passes only because of them."""
    return "waived: " + ", ".join(f"{f.rule_id} ({f.waiver})" for f in record.findings if f.waiver)
