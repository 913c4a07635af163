"""Records of unchanged files, kept between runs so that a re-run reads only what changed.

An entry is keyed by the file's path, size and modification time, and is valid only for the
same fingerprint: the rules (and waivers) as loaded, strictness, and the plugin's and pydicom's
versions. It lives in pytest's cache folder (so ``--cache-clear`` empties it) as one SQLite file.
An entry that does not parse back is ignored, never trusted; a cache that cannot be opened is
not used at all: the run then reads every file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from pytest_dicomqc import __version__
from pytest_dicomqc.record import FileRecord
from pytest_dicomqc.rules.model import RuleSet

Stat = tuple[int, int, int]
"""(size in bytes, modification time, status change time in ns) of a file, taken before reading it:
a chmod changes only the last, and a file rewritten during the read no longer matches."""

_PACKAGES = (
    "pydicom",
    "numpy",
    "pillow",
    "pylibjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "pylibjpeg-libjpeg",
    "pyjpegls",
    "python-gdcm",
)
"""Their versions, and whether they are installed at all, decide what decodes."""


def fingerprint(ruleset: RuleSet, strict: bool) -> str:
    """Changes whenever a file's record could change without the file changing."""
    facts = [repr(ruleset), str(strict), __version__, _source_digest()]
    facts += [f"{name} {_version(name)}" for name in _PACKAGES]
    return hashlib.sha256("\n".join(facts).encode("utf-8", "backslashreplace")).hexdigest()


@functools.cache
def _source_digest() -> str:
    """The plugin's own code: a record made by other code (a development checkout, an upgrade
    that kept the version number) may have another shape, so it is not reused."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def stat_of(path: Path) -> Stat | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


LOCK_WAIT = 1.0
"""Seconds to wait for a database another process holds: then the run reads every file instead."""


class Cached(NamedTuple):
    record: FileRecord
    checked: float
    """When the run that made the record started (seconds since the epoch)."""


class RecordCache:
    """One SQLite table; a new layout gets a new table name, so older caches are simply not read."""

    def __init__(self, database: Path, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        self._db: sqlite3.Connection | None = None
        self.problem = ""
        """Why the cache was given up (locked by another process, damaged, read-only), if it was."""
        try:
            self._db = sqlite3.connect(database, timeout=LOCK_WAIT)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records_v5 (path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                " ctime_ns INTEGER, fingerprint TEXT, record TEXT, checked REAL)"
            )
        except sqlite3.Error as exc:
            self._give_up(exc)  # unusable (corrupt, locked, read-only): read every file

    def _give_up(self, exc: sqlite3.Error) -> None:
        """Stop using the database for the rest of the run: each further query would wait again."""
        self.problem = str(exc)
        if self._db is not None:
            self._db.close()
            self._db = None

    def get(self, path: Path, stat: Stat) -> Cached | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT record, checked FROM records_v5 WHERE path = ? AND size = ? AND mtime_ns = ?"
                " AND ctime_ns = ? AND fingerprint = ?",
                (_key(path), *stat, self._fingerprint),
            ).fetchone()
            return Cached(FileRecord.from_wire(json.loads(row[0])), float(row[1])) if row else None
        except sqlite3.Error as exc:
            self._give_up(exc)
            return None
        except (ValueError, KeyError, TypeError):
            return None  # a damaged entry is read again, not trusted

    def put(self, entries: Iterable[tuple[Path, Stat, FileRecord]], checked: float) -> None:
        """Store records made by the run that started at ``checked`` (seconds since the epoch)."""
        if self._db is None:
            return
        rows = [
            (_key(path), *stat, self._fingerprint, json.dumps(record.to_wire()), checked)
            for path, stat, record in entries
        ]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO records_v5 VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self._give_up(exc)  # a cache that cannot be written only costs the next run time

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _key(path: Path) -> bytes:
    """The path's bytes: a name that is not UTF-8 and the text that shows it (``caf\\xe9``) stay two keys."""
    return os.fsencode(path)
