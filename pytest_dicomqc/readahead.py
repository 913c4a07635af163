"""Reading files in other processes, ahead of the test items that report them.

pytest's own loop keeps one core busy; reading and decoding go to a pool of processes sized to
the cores, in collection order and in small chunks (one task per file costs the main process
more than a small file's read), a bounded window ahead. A decoder that takes its process down
(a C library calling ``abort()``) breaks the pool: the files of the lost chunk are read again
one by one in a fresh pool, and the one that takes that process down too is recorded as
unreadable, so the run goes on and the file is named.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dicomqc.cache import Stat, stat_of
from pytest_dicomqc.pipeline import check_file, not_applicable
from pytest_dicomqc.record import KIND_UNREADABLE, STATUS_FAILED, FileRecord
from pytest_dicomqc.rules.model import RuleSet

CHUNK = 16


@dataclass(frozen=True)
class Job:
    path: Path
    relpath: str


@dataclass(frozen=True)
class CheckOptions:
    """What every reading process needs, sent once when it starts."""

    ruleset: RuleSet
    tags: frozenset[int]
    strict: bool


_OPTIONS: CheckOptions | None = None


def _start(options: CheckOptions, parent: int) -> None:
    global _OPTIONS  # one per reading process, set once at its start
    _OPTIONS = options
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="dicomqc-parent-watch").start()


def _exit_with(parent: int) -> None:
    """End this reading process when pytest is gone (killed by SIGTERM or SIGKILL, it cannot
    shut the pool down), instead of waiting for work forever."""
    while True:
        time.sleep(1)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # alive, owned by someone else


Read = tuple[dict[str, Any], "Stat | None"]
"""A record's wire form, and the file's stat taken just before it was read (for the cache)."""


def check_chunk(jobs: list[tuple[str, str]]) -> list[Read]:
    assert _OPTIONS is not None
    options = _OPTIONS
    reads: list[Read] = []
    for path, relpath in jobs:
        stat = stat_of(Path(path))
        reads.append((check_file(Path(path), relpath, options.ruleset, options.tags, options.strict).to_wire(), stat))
    return reads


ChunkCheck = Callable[[list[tuple[str, str]]], list[Read]]
"""Reads a chunk of (path, relpath) in a reading process; module-level, so it pickles by name."""


class ReadAhead:
    """Records of ``jobs``, read by ``workers`` processes ahead of :meth:`record` asking for them."""

    def __init__(self, jobs: list[Job], options: CheckOptions, workers: int, check: ChunkCheck | None = None) -> None:
        self._check = check or check_chunk
        self._options = options
        self._workers = workers
        self._chunks = [jobs[start : start + CHUNK] for start in range(0, len(jobs), CHUNK)]
        self._chunk_of = {job.path: index for index, chunk in enumerate(self._chunks) for job in chunk}
        self._window = 2 * workers + 2
        self._submitted = 0
        self._futures: dict[int, Future[list[Read]]] = {}
        self._records: dict[Path, tuple[FileRecord, Stat | None]] = {}
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver: reading processes start clean, not as copies of a running pytest
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(
            self._workers, mp_context=context, initializer=_start, initargs=(self._options, os.getpid())
        )

    def record(self, path: Path) -> tuple[FileRecord, Stat | None] | None:
        """The record of ``path`` and its stat, or None if it is not one of the jobs (read it yourself)."""
        if path not in self._records:
            index = self._chunk_of.get(path)
            if index is None:
                return None
            self._submit_through(index + self._window)
            self._collect(index)
        return self._records.pop(path, None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit_through(self, last: int) -> None:
        while self._submitted <= min(last, len(self._chunks) - 1):
            if self._submitted not in self._futures:
                self._futures[self._submitted] = self._submit(self._chunks[self._submitted])
            self._submitted += 1

    def _submit(self, jobs: list[Job]) -> Future[list[Read]]:
        with _main_script_hidden():  # the pool starts its processes in submit
            return self._pool.submit(self._check, [(str(job.path), job.relpath) for job in jobs])

    def _collect(self, index: int) -> None:
        future = self._futures.pop(index, None)
        if future is None:
            return
        try:
            reads = future.result()
        except BrokenProcessPool:
            self._recover(index)
            return
        for job, (wire, stat) in zip(self._chunks[index], reads, strict=True):
            self._records[job.path] = FileRecord.from_wire(wire), stat

    def _recover(self, index: int) -> None:
        """A reading process died: find the file that kills it, resubmit the rest to a new pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for job in self._chunks[index]:
            self._pool = self._new_pool()
            try:
                ((wire, stat),) = self._submit([job]).result()
                self._records[job.path] = FileRecord.from_wire(wire), stat
            except BrokenProcessPool:
                self._records[job.path] = _crashed(job, self._options.ruleset), None
                self._pool.shutdown(wait=False)
        self._pool = self._new_pool()
        lost = sorted(self._futures)
        self._futures.clear()
        for chunk_index in lost:
            self._futures[chunk_index] = self._submit(self._chunks[chunk_index])


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Start reading processes without the main script: multiprocessing runs it again in each
    new process (as ``__mp_main__``), and a script that calls ``pytest.main()`` without an
    ``if __name__ == "__main__":`` guard would start a whole pytest session in every reader.
    Readers need only this package; ``python -m pytest`` and the ``pytest`` command are not
    affected either way."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not hasattr(main, "__file__"):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _crashed(job: Job, ruleset: RuleSet) -> FileRecord:
    return FileRecord(
        path=job.relpath,
        kind=KIND_UNREADABLE,
        verdict=STATUS_FAILED,
        error="reading this file killed the reading process (a decoder crashed on it)",
        values={},
        results=not_applicable(ruleset),
        findings=(),
    )
