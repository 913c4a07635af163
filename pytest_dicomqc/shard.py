"""Which part of the dataset a CI job checks (``--dicom-shard=K/N``), and in what order parts merge.

A file's shard depends on its dataset-relative path and N alone: the same on every machine and in
every run, and a file added to the dataset moves no other file (each job's ``.pytest_cache`` keeps
serving the files it saw before). A stable hash spreads the files evenly by count. Pure: no pytest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

AUTO = "auto"
CI_SHARD_VARIABLES = (
    # (CI service, variable of this job's index, variable of the number of jobs, first index)
    ("GitLab CI (parallel:)", "CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
    ("CircleCI (parallelism)", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
    ("Buildkite (parallelism)", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
    ("Azure Pipelines (parallel)", "SYSTEM_JOBPOSITIONINPHASE", "SYSTEM_TOTALJOBSINPHASE", 1),
)
"""What ``--dicom-shard=auto`` reads, first match wins. GitHub Actions has no such variables: its
matrix passes the shard on the command line (README, "Sharding")."""
_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A shard that is not ``K/N`` with 1 <= K <= N; the message says what is wrong."""


@dataclass(frozen=True)
class Shard:
    index: int
    """K, from 1."""
    total: int
    """N."""
    source: str = ""
    """Where ``auto`` found it (``CI_NODE_INDEX=2, CI_NODE_TOTAL=3``); empty when given as K/N."""

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    @property
    def whole(self) -> bool:
        """One shard of one: the whole dataset, judged in the job itself."""
        return self.total == 1

    def holds(self, relpath: str) -> bool:
        return self.whole or shard_of(relpath, self.total) == self.index


def shard_of(relpath: str, total: int) -> int:
    """The shard (1..total) of a dataset-relative path; ``blake2b``, not ``hash()``, which
    Python salts per process."""
    digest = hashlib.blake2b(relpath.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % total + 1


def parse_shard(text: str, environ: Mapping[str, str]) -> Shard:
    """``K/N``, or ``auto``: the CI's own variables, else the whole dataset (1/1)."""
    if text.strip() == AUTO:
        return _from_environment(environ)
    match = _FORM.fullmatch(text)
    if match is None:
        raise ShardError(f"expected K/N (e.g. 2/3) or {AUTO!r}, not {text!r}")
    return _checked(int(match[1]), int(match[2]), text)


def _from_environment(environ: Mapping[str, str]) -> Shard:
    for service, index_name, total_name, first in CI_SHARD_VARIABLES:
        index, total = environ.get(index_name), environ.get(total_name)
        if index is None or total is None:
            continue
        source = f"{service}: {index_name}={index}, {total_name}={total}"
        try:
            shard = _checked(int(index) - first + 1, int(total), source)
        except ValueError as exc:
            raise ShardError(f"{AUTO}: {source} is not a shard ({exc})") from None
        return Shard(shard.index, shard.total, source)
    return Shard(1, 1, "no CI shard variables: the whole dataset")


def _checked(index: int, total: int, text: str) -> Shard:
    if total < 1 or not 1 <= index <= total:
        raise ShardError(f"shard {text!r} needs 1 <= K <= N")
    return Shard(index, total)


def order_key(relpath: str) -> tuple[str, ...]:
    """Where a file comes in the report: collection order, which walks folders depth first with
    entries sorted by name (:func:`~pytest_dicomqc.discover.sorted_entries`); comparing paths as
    text would put ``a-b`` before ``a/c``."""
    return tuple(relpath.split("/"))
