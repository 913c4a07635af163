"""Which shard a file belongs to, how ``auto`` finds the shard, and the order parts merge in."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pytest_dicomqc.discover import printable, sorted_entries
from pytest_dicomqc.shard import Shard, ShardError, order_key, parse_shard, shard_of


def test_k_of_n() -> None:
    assert parse_shard("2/3", {}) == Shard(2, 3)
    assert parse_shard(" 1 / 1 ", {}) == Shard(1, 1)
    assert str(parse_shard("10/12", {})) == "10/12"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/3", "shard '0/3' needs 1 <= K <= N"),
        ("4/3", "shard '4/3' needs 1 <= K <= N"),
        ("1/0", "shard '1/0' needs 1 <= K <= N"),
        ("2", "expected K/N (e.g. 2/3) or 'auto', not '2'"),
        ("2/3/4", "expected K/N (e.g. 2/3) or 'auto', not '2/3/4'"),
        ("-1/3", "expected K/N (e.g. 2/3) or 'auto', not '-1/3'"),
    ],
)
def test_bad_shards_say_why(text: str, message: str) -> None:
    with pytest.raises(ShardError) as caught:
        parse_shard(text, {})
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"},
            Shard(2, 3, "GitLab CI (parallel:): CI_NODE_INDEX=2, CI_NODE_TOTAL=3"),
        ),
        (
            {"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "4"},
            Shard(1, 4, "CircleCI (parallelism): CIRCLE_NODE_INDEX=0, CIRCLE_NODE_TOTAL=4"),
        ),
        (
            {"BUILDKITE_PARALLEL_JOB": "3", "BUILDKITE_PARALLEL_JOB_COUNT": "4"},
            Shard(4, 4, "Buildkite (parallelism): BUILDKITE_PARALLEL_JOB=3, BUILDKITE_PARALLEL_JOB_COUNT=4"),
        ),
        (
            {"SYSTEM_JOBPOSITIONINPHASE": "1", "SYSTEM_TOTALJOBSINPHASE": "2"},
            Shard(1, 2, "Azure Pipelines (parallel): SYSTEM_JOBPOSITIONINPHASE=1, SYSTEM_TOTALJOBSINPHASE=2"),
        ),
        ({"CI_NODE_INDEX": "2"}, Shard(1, 1, "no CI shard variables: the whole dataset")),  # half a pair
        ({}, Shard(1, 1, "no CI shard variables: the whole dataset")),
    ],
)
def test_auto_reads_the_ci_variables(environ: dict[str, str], expected: Shard) -> None:
    assert parse_shard("auto", environ) == expected


def test_auto_with_variables_that_are_no_shard() -> None:
    with pytest.raises(ShardError) as caught:
        parse_shard("auto", {"CI_NODE_INDEX": "4", "CI_NODE_TOTAL": "3"})
    assert str(caught.value) == (
        "auto: GitLab CI (parallel:): CI_NODE_INDEX=4, CI_NODE_TOTAL=3 is not a shard "
        "(shard 'GitLab CI (parallel:): CI_NODE_INDEX=4, CI_NODE_TOTAL=3' needs 1 <= K <= N)"
    )


def test_a_files_shard_is_fixed_by_its_path() -> None:
    """The same on every machine and in every Python process (no salted ``hash()``): these values
    were computed once, and a change of the function would move every file of every dataset."""
    assert [shard_of(path, 3) for path in ("a.dcm", "train/p1/IM_0001.dcm", "caf\\xe9.dcm", "ünï/ç.dcm")] == [
        3,
        2,
        3,
        2,
    ]
    assert shard_of("train/p1/IM_0001.dcm", 7) == 2


def test_every_file_in_exactly_one_shard_and_balanced() -> None:
    """Even by count, as a random split is: within 8 % of the mean (3.3 standard deviations for 8 shards)."""
    paths = [f"split{i % 3}/p{i // 100:03d}/IM_{i:05d}.dcm" for i in range(12_000)]
    for total in (2, 3, 5, 8):
        holders = [[k for k in range(1, total + 1) if Shard(k, total).holds(path)] for path in paths]
        assert all(len(found) == 1 for found in holders)
        counts = Counter(found[0] for found in holders)
        assert sorted(counts) == list(range(1, total + 1))
        mean = len(paths) / total
        assert all(abs(count - mean) < 0.08 * mean for count in counts.values()), counts
    assert all(Shard(1, 1).holds(path) for path in paths)


def _walk(folder: Path, prefix: str = "") -> list[str]:
    """Collection order: depth first, each folder's entries sorted as collection sorts them."""
    found = []
    for entry in sorted_entries(folder):
        relpath = f"{prefix}{printable(entry.name)}"
        found += _walk(Path(entry.path), relpath + "/") if entry.is_dir() else [relpath]
    return found


def test_merge_order_is_collection_order(tmp_path: Path) -> None:
    """Text order would put ``a-b.dcm`` (``-`` is 0x2D) before ``a/c.dcm`` (``/`` is 0x2F); a
    backslash or a byte that is not UTF-8 sorts by how the report shows it."""
    names = ["a/c.dcm", "a-b.dcm", "a.dcm", "a/b/z.dcm", "a0.dcm", "B.dcm", "b/a.dcm", "x\\y.dcm", "x]y.dcm"]
    names += ["\udce9.dcm", "é.dcm"]  # byte 0xE9 (shown \xe9), and é (UTF-8)
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    if not os.path.exists(tmp_path / "\udce9.dcm"):  # pragma: no cover - a file system refusing raw bytes
        pytest.skip("this file system does not keep names that are not UTF-8")
    walked = _walk(tmp_path)
    assert walked == sorted(walked, key=order_key)
    assert walked == [
        "B.dcm",
        "\\xe9.dcm",
        "a/b/z.dcm",
        "a/c.dcm",
        "a-b.dcm",
        "a.dcm",
        "a0.dcm",
        "b/a.dcm",
        "x\\\\y.dcm",
        "x]y.dcm",
        "é.dcm",
    ]
