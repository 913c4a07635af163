"""Reading files in other processes, ahead of the test items that report them.

pytest's own loop keeps one core busy; reading and decoding go to a pool of processes sized to
the cores, in collection order and in small chunks (one task per file costs the main process
more than a small file's read), a bounded window ahead. A decoder that takes its process down
(a C library calling ``abort()``), or a file that outlasts its time in C code (the kernel ends
the process, see :mod:`~pytest_dicomqc.deadline`), breaks the pool: the files of the lost chunk
are read again one by one in a fresh pool, and the one that takes that process down too is
recorded as unreadable (crashed, or timed out), so the run goes on and the file is named.

Reading processes never outlive pytest: they are its own children and the kernel kills them
when it dies, even by SIGKILL (Linux's parent-death signal), and :meth:`ReadAhead.close` kills
those still busy when a run is interrupted instead of waiting for their files.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # the builtin one from Python 3.11
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_dicomqc.cache import Stat
from pytest_dicomqc.children import kill_pool, main_script_hidden, pool_processes, tie_to_parent
from pytest_dicomqc.deadline import CPU_GRACE, cpu_limit, timed_out_error
from pytest_dicomqc.pipeline import CheckOptions, check, lasting, unread
from pytest_dicomqc.record import FileRecord

CHUNK = 16


@dataclass(frozen=True)
class Job:
    path: Path
    relpath: str
    state: Stat | None = None
    """The file's state for the cache key (``--dicom-cache``), taken by the controller before
    the read; None when nothing is cached."""


START_GRACE = 10.0
"""Seconds a chunk may take on top of its files' time: a reading process importing pydicom and
numpy on a loaded machine."""
CRASHED = "reading this file killed the reading process (a decoder crashed on it)"
_OPTIONS: CheckOptions | None = None


def _start(options: CheckOptions, parent: int) -> None:
    global _OPTIONS  # one per reading process, set once at its start
    _OPTIONS = options
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))  # no core files
    tie_to_parent(parent)


Read = tuple[dict[str, Any], "Stat | None"]
"""A record's wire form, and the file's state for the cache key (None: not to be cached)."""
Task = tuple[str, str, "Stat | None"]
"""A job as a reading process gets it: path, dataset-relative path, state (:attr:`Job.state`)."""


def check_chunk(tasks: list[Task]) -> list[Read]:
    assert _OPTIONS is not None
    options = _OPTIONS
    reads: list[Read] = []
    for path, relpath, state in tasks:
        with cpu_limit(options.file_timeout):
            record = check(Path(path), relpath, options)
        reads.append((record.to_wire(), state if lasting(record, options) else None))
    return reads


ChunkCheck = Callable[[list[Task]], list[Read]]
"""Reads a chunk of tasks in a reading process; module-level, so it pickles by name."""


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
        # spawn: reading processes start clean, not as copies of a running pytest, and as its
        # children (not the forkserver's), so that the kernel can end them when pytest dies
        context = multiprocessing.get_context("spawn")
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
        """Stop reading. Readers still busy (the run was interrupted, or stopped by ``-x``) are
        killed rather than waited for: their files are not needed and one may never end. Then
        the pool's own thread is waited for, so that nothing of the pool outlives the session."""
        if not all(future.done() for future in self._futures.values()):
            kill_pool(self._pool)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit_through(self, last: int) -> None:
        while self._submitted <= min(last, len(self._chunks) - 1):
            if self._submitted not in self._futures:
                self._futures[self._submitted] = self._submit(self._chunks[self._submitted])
            self._submitted += 1

    def _submit(self, jobs: list[Job]) -> Future[list[Read]]:
        with main_script_hidden():  # the pool starts its processes in submit
            return self._pool.submit(self._check, [(str(job.path), job.relpath, job.state) for job in jobs])

    def _collect(self, index: int) -> None:
        future = self._futures.get(index)
        if future is None:
            return
        try:  # the future stays in _futures meanwhile: close() must see it is not done
            reads = future.result(timeout=self._wait_limit(len(self._chunks[index])))
        except (BrokenProcessPool, FutureTimeout):  # a reader died, or is stuck where no signal reaches
            del self._futures[index]
            self._recover(index)
            return
        del self._futures[index]
        for job, (wire, stat) in zip(self._chunks[index], reads, strict=True):
            self._records[job.path] = FileRecord.from_wire(wire), stat

    def _wait_limit(self, files: int) -> float | None:
        """How long to wait for a chunk of ``files`` that is being read: each file's time and
        the kernel's grace, plus time to start a reader. None: no limit (``--dicom-file-timeout=0``)."""
        timeout = self._options.file_timeout
        return files * (timeout + CPU_GRACE) + START_GRACE if timeout else None

    def _recover(self, index: int) -> None:
        """A reading process died or got stuck: find the file that does it, alone in a new
        pool each, and resubmit the other chunks in flight to a new pool."""
        kill_pool(self._pool)
        self._pool.shutdown(wait=True, cancel_futures=True)
        timed_out = timed_out_error(self._options.file_timeout)
        for job in self._chunks[index]:
            self._pool = self._new_pool()
            future = self._submit([job])
            readers = pool_processes(self._pool)
            try:
                ((wire, stat),) = future.result(timeout=self._wait_limit(1))
                self._records[job.path] = FileRecord.from_wire(wire), stat
            except FutureTimeout:  # stuck, not even using the processor: waiting on something
                kill_pool(self._pool)
                self._records[job.path] = unread(job.relpath, self._options.ruleset, timed_out), None
            except BrokenProcessPool:
                self._pool.shutdown(wait=True)  # the pool's thread reaps the reader: then its exit code is known
                stopped = any(reader.exitcode == -signal.SIGXCPU for reader in readers)  # by cpu_limit
                error = timed_out if stopped else CRASHED
                self._records[job.path] = unread(job.relpath, self._options.ruleset, error), None
            self._pool.shutdown(wait=True)
        self._pool = self._new_pool()
        lost = sorted(self._futures)
        self._futures.clear()
        for chunk_index in lost:
            self._futures[chunk_index] = self._submit(self._chunks[chunk_index])
