"""Where each item's record comes from: the cache, the read-ahead pool, or a read in the loop.

The pytest side of :mod:`pytest_dicomqc.cache` and :mod:`pytest_dicomqc.readahead`: decided
once, after collection, in every process that runs items.
"""

from __future__ import annotations

import atexit
import gc
import signal
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from pytest_dicomqc.cache import RecordCache, Stat, fingerprint, stat_of
from pytest_dicomqc.pipeline import check_file
from pytest_dicomqc.readahead import CheckOptions, Job, ReadAhead
from pytest_dicomqc.record import FileRecord
from pytest_dicomqc.settings import Settings, readers

READ_AHEAD_KEY = pytest.StashKey[ReadAhead]()
CACHED_KEY = pytest.StashKey[FileRecord]()
STAT_KEY = pytest.StashKey[Stat]()
CACHING_KEY = pytest.StashKey[bool]()
SIGTERM_KEY = pytest.StashKey[bool]()
CACHE_FOLDER = "dicomqc"
CACHE_FILE = "records.sqlite"


class DatasetItem(Protocol):
    path: Path
    relpath: str
    stash: pytest.Stash


def open_cache(config: pytest.Config, settings: Settings) -> RecordCache | None:
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    if cache is None or settings.no_cache:
        return None
    return RecordCache(cache.mkdir(CACHE_FOLDER) / CACHE_FILE, fingerprint(settings.ruleset, settings.strict))


def prepare(config: pytest.Config, settings: Settings, items: Sequence[DatasetItem]) -> None:
    """Take unchanged files from the cache; start reading the others ahead, in run order."""
    cache = open_cache(config, settings)
    config.stash[CACHING_KEY] = cache is not None
    to_read = []
    for item in items:
        stat = stat_of(item.path) if cache is not None else None
        cached = cache.get(item.path, stat) if cache is not None and stat is not None else None
        if stat is not None:
            item.stash[STAT_KEY] = stat
        if cached is not None and cached.path == item.relpath:
            item.stash[CACHED_KEY] = cached
        else:
            to_read.append(item)
    if cache is not None:
        cache.close()
    workers = 0 if hasattr(config, "workerinput") else readers(settings, len(to_read))  # an xdist worker reads itself
    if workers:
        jobs = [Job(item.path, item.relpath) for item in to_read]
        config.stash[READ_AHEAD_KEY] = ReadAhead(
            jobs, CheckOptions(settings.ruleset, settings.tags, settings.strict), workers
        )


def record_for(item: DatasetItem, config: pytest.Config, settings: Settings) -> FileRecord:
    cached = item.stash.get(CACHED_KEY, None)
    if cached is not None:
        del item.stash[CACHED_KEY]
        return cached
    read_ahead = config.stash.get(READ_AHEAD_KEY, None)
    read = read_ahead.record(item.path) if read_ahead is not None else None
    if read is None:
        stat = stat_of(item.path) if config.stash.get(CACHING_KEY, False) else None
        read = check_file(item.path, item.relpath, settings.ruleset, settings.tags, settings.strict), stat
    record, stat = read
    if stat is not None:
        item.stash[STAT_KEY] = stat  # taken before the read: what the cache entry is valid for
    return record


def interrupt_on_sigterm(config: pytest.Config) -> None:
    """Treat SIGTERM (a CI timeout, ``kill``) like Ctrl-C: pytest then ends the session, the
    report is written with ``not run`` rows and the reading processes are shut down. Only where
    nobody else handles SIGTERM already; :func:`finish` puts the default back."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
        config.stash[SIGTERM_KEY] = True


def exit_without_collecting() -> None:
    """At interpreter exit, freeze the garbage collector: a dataset run leaves millions of
    objects (an item and three reports per file), and the collector's final passes over them
    took 1.8 s of a 20,000-file run, after the work was done. Registered once per process; it
    runs only when the process ends, so an in-process ``pytest.main()`` is not affected."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def finish(config: pytest.Config) -> None:
    if config.stash.get(SIGTERM_KEY, False):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    read_ahead = config.stash.get(READ_AHEAD_KEY, None)
    if read_ahead is not None:
        read_ahead.close()


def remember(config: pytest.Config, settings: Settings, entries: Iterable[tuple[Path, Stat, FileRecord]]) -> None:
    """Store this run's records for the next one (the controller does it, for every worker)."""
    cache = open_cache(config, settings)
    if cache is not None:
        cache.put(entries)
        cache.close()
