"""The plugin's state in one pytest process: one object, behind one stash key.

Created in ``pytest_configure`` when a dataset is configured, in the controller and in every
xdist worker alike. It owns the settings, the counts collection makes, the cache and the
read-ahead pool; on the controller it also holds the :class:`~pytest_dicomqc.reporter.Reporter`.
Imported only then: a pytest run without a dataset never loads pydicom or numpy.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import signal
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_dicomqc.cache import STATES, Cached, RecordCache, Stat, fingerprint
from pytest_dicomqc.deadline import FileTimedOut, cpu_limit, time_limit
from pytest_dicomqc.pipeline import CheckOptions, check, lasting
from pytest_dicomqc.readahead import Job, ReadAhead
from pytest_dicomqc.record import FileRecord, forget_shared
from pytest_dicomqc.settings import Settings, readers

if TYPE_CHECKING:
    from pytest_dicomqc.collection import Ignored, PytestIgnores
    from pytest_dicomqc.nodes import DicomItem
    from pytest_dicomqc.reporter import Reporter

CACHE_FOLDER = "dicomqc"
CACHE_FILE = "records.sqlite"


class DicomQCSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.options = CheckOptions(settings.ruleset, settings.tags, settings.strict, settings.file_timeout)
        self.in_worker = hasattr(config, "workerinput")
        """An xdist worker: it reads its files itself, and reports them to the controller."""
        self.collected = 0
        """Dataset files collected, before ``-k``, ``-m``, ``--lf`` or ``--deselect`` drop some."""
        self.selected = 0
        self.ignored: Ignored | None = None
        self.pytest_ignores: PytestIgnores | None = None
        self.read_ahead: ReadAhead | None = None
        self.caching = False
        self.handles_sigterm = False
        self.cache_unusable = False
        self.reporter: Reporter | None = None
        """On the controller only (``not hasattr(config, "workerinput")``)."""

    @property
    def left_out(self) -> int:
        """Dataset files collected but not run: the run's verdicts then rest on the cache."""
        return self.collected - self.selected

    def open_cache(self) -> RecordCache | None:
        """The record cache, or ``None``: turned off, or its folder cannot be made (a read-only
        checkout, ``.pytest_cache`` not a folder). Like pytest's own cache then, it costs a
        warning, once, never the run: every file is read."""
        cache = getattr(self.config, "cache", None)  # absent with -p no:cacheprovider
        if cache is None or self.settings.no_cache or self.cache_unusable:
            return None
        try:
            folder = cache.mkdir(CACHE_FOLDER)
        except OSError as exc:
            self.give_up_cache(str(exc))
            return None
        settings = self.settings
        return RecordCache(folder / CACHE_FILE, fingerprint(settings.ruleset, settings.strict, settings.cache_mode))

    def close_cache(self, cache: RecordCache) -> None:
        cache.close()
        if cache.moved_aside is not None:  # one process finds it damaged: the next opens a new one
            message = f"dicomqc: cache database was damaged, moved aside to {cache.moved_aside}; rebuilt"
            warnings.warn(pytest.PytestCacheWarning(message), stacklevel=1)
        if cache.problem:  # locked by another process, read-only: given up after one wait (LOCK_WAIT)
            self.give_up_cache(cache.problem)

    def give_up_cache(self, problem: str) -> None:
        """No cache for the rest of the run, said once: every file is read."""
        if not self.cache_unusable:
            self.cache_unusable = True
            message = f"dicomqc: cache not used, every file is read: {problem}"
            warnings.warn(pytest.PytestCacheWarning(message), stacklevel=1)

    def prepare(self, items: Sequence[DicomItem]) -> None:
        """Take unchanged files from the cache; start reading the others ahead, in run order."""
        settings = self.settings
        cache = self.open_cache()
        self.caching = cache is not None
        to_read = []
        for item in items:
            stat = self.state_of(item.path) if cache is not None else None
            cached = cache.get(self.key(item.relpath), stat) if cache is not None and stat is not None else None
            if cached is not None and cached.record.path == item.relpath:
                item.record = cached.record  # no stat: the cache holds it already, as first checked
            else:
                item.stat = stat
                to_read.append(item)
        if cache is not None:
            self.close_cache(cache)
        workers = 0 if self.in_worker else readers(settings, len(to_read))  # a worker reads itself
        if workers:
            jobs = [Job(item.path, item.relpath, item.stat) for item in to_read]
            self.read_ahead = ReadAhead(jobs, self.options, workers)

    def check(self, item: DicomItem) -> FileRecord:
        """The item's record: from the cache, from the read-ahead pool, or read now."""
        if item.record is not None:
            return item.record
        read = self.read_ahead.record(item.path) if self.read_ahead is not None else None
        if read is None:
            # an xdist worker may be ended by the kernel like a reading process: xdist then
            # reports the file as crashed and starts another worker; pytest's own process, never
            with cpu_limit(self.options.file_timeout) if self.in_worker else contextlib.nullcontext():
                record = check(item.path, item.relpath, self.options)
            # the state prepare took, before the read; none for a record not to be cached
            read = record, item.stat if lasting(record, self.options) else None
        item.record, item.stat = read
        return item.record

    def state_of(self, path: Path) -> Stat | None:
        """The file's state for the cache key, by ``--dicom-cache``. Hashing the content takes the
        file's time at most: a file too big to hash in time is read, not cached."""
        take = STATES[self.settings.cache_mode]
        if self.settings.cache_mode == "stat":
            return take(path)
        try:
            with time_limit(self.options.file_timeout):
                return take(path)
        except FileTimedOut:
            return None

    def key(self, relpath: str) -> Path:
        """A file's key in the cache: its dataset-relative path as the report shows it (unique,
        also for names that are not UTF-8), under the dataset root."""
        return self.settings.dataset / relpath

    def remember(self, entries: Iterable[tuple[str, Stat, FileRecord | None]], checked: float) -> None:
        """Store this run's records for the next one (the controller does it, for every worker):
        (dataset-relative path, stat, record) of each file read."""
        cache = self.open_cache()
        if cache is not None:
            cache.put(((self.key(relpath), stat, record) for relpath, stat, record in entries if record), checked)
            self.close_cache(cache)

    def earlier(self, files: Iterable[tuple[Path, str]]) -> Iterator[Cached | None]:
        """For files (path, dataset-relative path) not checked in this run, the cached result
        still valid for each, if any."""
        cache = self.open_cache()
        try:
            for path, relpath in files:
                stat = self.state_of(path) if cache is not None else None
                cached = cache.get(self.key(relpath), stat) if cache is not None and stat is not None else None
                yield cached if cached is not None and cached.record.path == relpath else None  # same root
        finally:
            if cache is not None:
                self.close_cache(cache)

    def interrupt_on_sigterm(self) -> None:
        """Treat SIGTERM (a CI timeout, ``kill``) like Ctrl-C: pytest then ends the session, the
        report is written with ``not run`` rows and the reading processes are shut down. Only where
        nobody else handles SIGTERM already; :meth:`finish` puts the default back."""
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _interrupt)
            self.handles_sigterm = True

    @contextlib.contextmanager
    def signals_deferred(self) -> Iterator[list[int]]:
        """Let SIGINT and SIGTERM wait until the block is done (the cache and report writes): a
        report cut short would leave the previous run's report looking current. Yields the
        signals received meanwhile; the caller ends the run as interrupted (exit 2)."""
        received: list[int] = []
        deferred = (signal.SIGINT, signal.SIGTERM)
        previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in deferred}
        try:
            yield received
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def finish(self) -> None:
        forget_shared()
        if self.handles_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self.read_ahead is not None:
            self.read_ahead.close()


def exit_without_collecting() -> None:
    """At interpreter exit, freeze the garbage collector: a dataset run leaves millions of
    objects (an item and three reports per file), and the collector's final passes over them
    took 1.8 s of a 20,000-file run, after the work was done. Registered once per process; it
    runs only when the process ends, so an in-process ``pytest.main()`` is not affected."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
