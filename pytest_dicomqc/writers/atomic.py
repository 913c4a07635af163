"""Report files are written whole or not at all: beside the target, then moved over it.

A crash, a kill or a full disk never leaves half a workbook where the last good one was, and a
report that looks current always is.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PARTIAL = ".dicomqc-partial"
"""Suffix of a report being written: ``.<report name>.<pid>.<random><suffix>``."""


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream that becomes ``path`` when the block ends without an error.

    The temporary file lies beside the target (same file system: the rename is atomic) and is
    created exclusively, under a name no one can predict, never through a link someone planted in
    a shared folder (``mkstemp``: ``O_EXCL | O_NOFOLLOW``). Its name carries this process's id, so
    that the leftover of a killed run is recognised, and removed, by the next one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=PARTIAL)
    temporary = Path(name)
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())  # like any new file, not mkstemp's owner-only mode
        with os.fdopen(descriptor, "wb") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def partial_files(path: Path) -> str:
    """The pattern (for ``glob`` and ``fnmatch``) of the partial files of ``path``, its folder included."""
    return f"{glob.escape(str(path.parent / f'.{path.name}.'))}*{PARTIAL}"


def remove_leftovers(path: Path) -> None:
    """Remove partial reports of ``path`` left by runs that were killed (their process is gone)."""
    for leftover in map(Path, glob.glob(partial_files(path))):
        pid = leftover.name[len(path.name) + 2 :].partition(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                leftover.unlink()  # a link is removed itself, never its target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, another user's
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
