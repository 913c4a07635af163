"""Records of unchanged files, kept between runs so that a re-run reads only what changed.

An entry is keyed by the file's path and its state (see :data:`Stat`: its size, times, device,
inode and link target, or with ``--dicom-cache=content`` a hash of its bytes), and is valid only
for the same fingerprint: the rules (and waivers) as loaded, strictness, the cache mode, the
plugin's and decoders' versions, and the pixel hash's algorithm. It lives in pytest's cache folder
(so ``--cache-clear`` empties it) as one SQLite file. Each entry carries a checksum over its key
and record: an entry that does not parse back or whose checksum does not match is ignored (the
file is read again), never trusted. A damaged database is moved aside and made anew; one that cannot be opened (another
process holds it, a read-only folder) is not used at all: the run then reads every file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from stat import S_ISLNK, S_ISREG
from typing import NamedTuple, NewType

from pytest_dicomqc import __version__
from pytest_dicomqc.reader import PIXEL_HASH
from pytest_dicomqc.record import FileRecord
from pytest_dicomqc.rules.model import RuleSet

Stat = NewType("Stat", tuple[int, ...])
"""A file's state as the cache knows it, taken before reading the file, so that a file rewritten
during the read no longer matches. Whole numbers only: it rides to the xdist controller as is.

By :func:`stat_of` (size, modification time, status change time in ns, device, inode, link
target's digest or 0): a chmod changes the status change time; another file put in the path's
place (a swapped folder, a retargeted link), however alike in size and times, has another inode.
By :func:`content_of` (size, digest of the bytes): the same bytes match on any machine."""

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


def fingerprint(ruleset: RuleSet, strict: bool, mode: str) -> str:
    """Changes whenever a file's record could change without the file changing, and with the
    cache ``mode``: an entry keyed by one mode's state is never served in the other. The pixel
    hash's algorithm is named too: keys of two algorithms never meet in one ``unique_pixels`` check."""
    facts = [repr(ruleset), str(strict), mode, __version__, _source_digest(), f"pixel hash {PIXEL_HASH}"]
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
        info = os.lstat(path)
        link = 0
        if S_ISLNK(info.st_mode):
            link = _digest(os.fsencode(os.readlink(path)))
            info = os.stat(path)
    except OSError:
        return None
    return Stat((info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_dev, info.st_ino, link))


BLOCK = 1 << 20
"""Bytes hashed at a time by :func:`content_of`."""


def content_of(path: Path) -> Stat | None:
    """Size and digest of a regular file's bytes; None for what cannot be read, and without
    blocking for FIFOs and devices (the read then records why)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    digest = hashlib.blake2b(digest_size=32)
    size = 0
    with open(fd, "rb", buffering=0) as file:
        try:
            info = os.fstat(fd)
            if not S_ISREG(info.st_mode):
                return None
            block = bytearray(min(info.st_size + 1, BLOCK))  # 1 MiB per small file cost more than its hash
            while count := file.readinto(block):
                digest.update(memoryview(block)[:count])
                size += count
        except OSError:
            return None
    return Stat((size, int.from_bytes(digest.digest(), "big")))


STATES: dict[str, Callable[[Path], Stat | None]] = {"stat": stat_of, "content": content_of}
"""The function that takes a file's state, by cache mode (``--dicom-cache``)."""


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "big")


LOCK_WAIT = 1.0
"""Seconds to wait for a database another process holds: then the run reads every file instead."""


class Cached(NamedTuple):
    record: FileRecord
    checked: float
    """When the run that made the record started (seconds since the epoch)."""


class RecordCache:
    """One SQLite table; a new layout gets a new table name, so older caches are simply not read."""

    def __init__(self, database: Path, fingerprint: str) -> None:
        self._database = database
        self._fingerprint = fingerprint
        self._db: sqlite3.Connection | None = None
        self._opened: tuple[int, int] | None = None
        self.problem = ""
        """Why the cache was given up (locked by another process, read-only), if it was."""
        self.moved_aside: Path | None = None
        """Where the damaged database was moved, if it was: this one is new."""
        self._open()

    def _open(self) -> None:
        try:
            self._opened = _identity(self._database)
            self._db = sqlite3.connect(self._database, timeout=LOCK_WAIT)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS records_v6 (path BLOB PRIMARY KEY, state TEXT, fingerprint TEXT,"
                " record TEXT, checked REAL, checksum TEXT)"
            )
        except sqlite3.Error as exc:
            self._failed(exc)

    def _failed(self, exc: sqlite3.Error) -> None:
        """A damaged database is moved aside and made anew, once; any other error (locked,
        read-only) gives the cache up for the rest of the run: each further query would wait again."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if not _damaged(exc) or self.moved_aside is not None:
            self.problem = str(exc)
            return
        aside = self._database.with_name(self._database.name + ".damaged")
        try:
            if _identity(self._database) == self._opened:  # else another process moved it already
                os.replace(self._database, aside)  # SQLite drops a journal left behind: the new one is empty
        except OSError as move_error:
            self.problem = f"{exc}; cannot move it aside: {move_error}"
            return
        self.moved_aside = aside
        self._open()

    def get(self, path: Path, stat: Stat) -> Cached | None:
        if self._db is None:
            return None
        key, state = _key(path), _state(stat)
        try:
            row = self._db.execute(
                "SELECT record, checked, checksum FROM records_v6 WHERE path = ? AND state = ? AND fingerprint = ?",
                (key, state, self._fingerprint),
            ).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        if row is None or row[2] != _checksum(key, state, self._fingerprint, row[0], row[1]):
            return None  # an entry changed after it was written is read again, not trusted
        try:
            return Cached(FileRecord.from_wire(json.loads(row[0])), float(row[1]))
        except (ValueError, KeyError, TypeError):
            return None  # a record of another shape: read again

    def put(self, entries: Iterable[tuple[Path, Stat, FileRecord]], checked: float) -> None:
        """Store records made by the run that started at ``checked`` (seconds since the epoch)."""
        if self._db is None:
            return
        rows = []
        for path, stat, record in entries:
            key, state, text = _key(path), _state(stat), json.dumps(record.to_wire())
            checksum = _checksum(key, state, self._fingerprint, text, checked)
            rows.append((key, state, self._fingerprint, text, checked, checksum))
        for _ in range(2):  # a database found damaged is made anew once: the records go there
            if self._db is None:
                return  # a cache that cannot be written only costs the next run time
            try:
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO records_v6 VALUES (?, ?, ?, ?, ?, ?)", rows)
                return
            except sqlite3.Error as exc:
                self._failed(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _key(path: Path) -> bytes:
    """The path's bytes: a name that is not UTF-8 and the text that shows it (``caf\\xe9``) stay two keys."""
    return os.fsencode(path)


def _state(stat: Stat) -> str:
    return ",".join(map(str, stat))


def _checksum(key: bytes, state: str, fingerprint: str, record: str, checked: float) -> str:
    """Over everything an entry says, each part length-prefixed: a record edited in place, or
    moved to another key, no longer matches. Not a signature: whoever can write the cache can
    compute it too."""
    digest = hashlib.blake2b(digest_size=32)
    for part in (key, state.encode(), fingerprint.encode(), record.encode(), repr(checked).encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _damaged(exc: sqlite3.Error) -> bool:
    """SQLite's "file is not a database" and "database disk image is malformed" (and no other
    error: locked, read-only, full and I/O errors are subclasses) are DatabaseError itself."""
    return type(exc) is sqlite3.DatabaseError


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino
