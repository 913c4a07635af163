"""A run's records as a part file (``--dicom-records``), and the checks that parts form one run.

One JSON object per line: a header (which shard of how many, how many files, the rules as read and
their fingerprint, the versions, the dataset), one line per file (its report row: status and
record, identifying values already pseudonymised), and an end line with the count written, so that
a part cut short is recognised. Gzip-compressed when the name ends in ``.gz``; read either way.
The merge (:mod:`pytest_dicomqc.merge`) reads parts back with :func:`read_header` and
:func:`rows`. Pure formats and checks: no pytest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from pytest_dicomqc.record import ReportRow
from pytest_dicomqc.shard import order_key

FORMAT = "pytest-dicomqc records"
VERSION = 1
"""Bumped whenever a line changes shape: a merge reads parts of its own version only."""
HEADER, ROW, END = "header", "row", "end"
_GZIP_MAGIC = b"\x1f\x8b"


class PartError(Exception):
    """A part file that cannot be read, or parts that do not form one run: the merge exits 4."""


@dataclass(frozen=True)
class PartHeader:
    """What a part says of itself; the merge checks that every part says the same of the run."""

    shard: int
    shards: int
    files: int
    """Files of the shard: one row each follows."""
    rules: tuple[tuple[str, str], ...]
    """(source, text) of the rules file and of the waivers file, as the run loaded them."""
    strict: bool
    dataset: str
    """The dataset folder as the user gave it (``data/``)."""
    root: str
    """Its absolute path on the machine that ran the shard."""
    plugin: str
    pydicom: str
    created: str

    @property
    def fingerprint(self) -> str:
        """The rules' texts and strictness: what decides each file's verdict besides the file."""
        digest = hashlib.sha256(f"strict={self.strict}".encode())
        for _, text in self.rules:
            digest.update(b"\0" + text.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def line(self) -> bytes:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return _line({"type": HEADER, "format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint, **fields})


class PartWriter:
    """Rows as they come, then :meth:`finish`; ``target`` is the (temporary) file being written."""

    def __init__(self, target: IO[bytes], name: Path, header: PartHeader) -> None:
        self._file: IO[bytes] = target
        if name.suffix == ".gz":  # level 1: a part is written while the run goes on
            self._file = gzip.GzipFile(filename="", mode="wb", fileobj=target, compresslevel=1, mtime=0)  # type: ignore[assignment]
        self._file.write(header.line())
        self.written = 0

    def add(self, rows: Iterable[ReportRow]) -> None:
        lines = [_line({"type": ROW, **row.to_wire()}) for row in rows]
        self._file.write(b"".join(lines))
        self.written += len(lines)

    def finish(self) -> None:
        self._file.write(_line({"type": END, "files": self.written}))
        self._file.close()  # the gzip trailer; the target itself is closed by its owner


def _line(value: dict[str, Any]) -> bytes:
    """ASCII JSON: lone surrogates (names that are not UTF-8) and non-finite floats come back as
    they were written."""
    return json.dumps(value, separators=(",", ":")).encode("ascii") + b"\n"


def _loads(line: bytes) -> Any:
    """orjson where it can (a row in half json's time), json for what orjson refuses and json
    wrote: NaN, lone surrogates (names that are not UTF-8), integers past 64 bits."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _open(path: Path) -> IO[bytes]:
    stream = path.open("rb")
    if stream.read(2) == _GZIP_MAGIC:
        stream.seek(0)
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    stream.seek(0)
    return stream


def read_header(path: Path) -> PartHeader:
    try:
        with _open(path) as stream:
            first = stream.readline()
    except (OSError, EOFError, zlib.error) as exc:
        raise PartError(f"{path}: cannot read part file: {_reason(exc)}") from None
    try:
        header = json.loads(first)
        if header.get("type") != HEADER or header.get("format") != FORMAT:
            raise ValueError
    except (ValueError, AttributeError):
        raise PartError(f"{path}: not a pytest-dicomqc records part file (written by --dicom-records)") from None
    if header.get("version") != VERSION:
        raise PartError(
            f"{path}: part file version {header.get('version')!r}; this pytest-dicomqc reads version {VERSION}"
        )
    try:
        fields = {name: header[name] for name in PartHeader.__dataclass_fields__}
        fields["rules"] = tuple((str(source), str(text)) for source, text in fields["rules"])
        part = PartHeader(**fields)
        if not 1 <= part.shard <= part.shards or not part.rules:
            raise ValueError(f"shard {part.shard}/{part.shards}, {len(part.rules)} rules files")
        return part
    except (KeyError, TypeError, ValueError) as exc:
        raise PartError(f"{path}: damaged part header ({exc})") from None


def rows(
    path: Path, header: PartHeader, kept: Collection[str]
) -> Iterator[tuple[tuple[str, ...], ReportRow, ReportRow]]:
    """The part's rows in its report order, each with its :func:`~pytest_dicomqc.shard.order_key`
    and twice: with only the ``kept`` values (see :meth:`ReportRow.from_wire`), and whole, to be
    written and dropped. A part cut short or
    damaged raises :class:`PartError` where it ends, after the rows before it."""
    count = 0
    end: Any = None
    previous: tuple[str, ...] | None = None
    try:
        with _open(path) as stream:
            stream.readline()
            for text in stream:
                line = _loads(text)
                kind = line["type"]
                if kind == ROW:
                    count += 1
                    row = ReportRow.from_wire(line, kept)
                    key = order_key(row.path)
                    if previous is not None and key <= previous:
                        raise PartError(f"{path}: {row.path} comes after {'/'.join(previous)}: rows out of order")
                    previous = key
                    yield key, row, ReportRow.from_wire(line)
                elif kind == END:
                    end = line
                    break
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError) as exc:
        raise PartError(f"{path}: damaged after {count:,} of {header.files:,} files: {_reason(exc)}") from None
    if end is None:
        raise PartError(f"{path}: truncated after {count:,} of {header.files:,} files (no end line)")
    if not count == end.get("files") == header.files:
        raise PartError(f"{path}: holds {count:,} files; its header says {header.files:,}, its end {end.get('files')}")


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__
