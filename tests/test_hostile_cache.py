"""A cache that would lie: entries edited in place, another file behind the same stat, a cache
restored from elsewhere, a damaged database. Each run must report what the files say now."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests.helpers import count_reads, read_sheet, write_dicom

CT_ONLY = "version: 1\nrules:\n  - {id: ct-only, tag: Modality, equals: CT}\n"
MODALITY_CT = b"\x08\x00\x60\x00CS\x02\x00CT"
"""Modality (0008,0060) = CT as Explicit VR Little Endian writes it."""
TIMEOUT = 120
XDIST = pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])


def database(pytester: pytest.Pytester) -> Path:
    return pytester.path / ".pytest_cache" / "d" / "dicomqc" / "records.sqlite"


def run(pytester: pytest.Pytester, xdist: bool, *args: str) -> tuple[pytest.RunResult, list[dict[str, object]]]:
    options = ("--dicom-dir=data", "--dicom-report=r.xlsx", *args)
    if xdist:
        result = pytester.runpytest_subprocess(*options, "-n", "2", timeout=TIMEOUT)
    else:
        result = pytester.runpytest(*options)
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    return result, read_sheet(pytester.path / "r.xlsx")


def statuses(rows: list[dict[str, object]]) -> dict[object, tuple[object, object]]:
    return {row["path"]: (row["status"], row["failed_rules"]) for row in rows}


def same_times(*paths: Path) -> None:
    """Give files one mtime and, as the kernel's coarse clock allows (utime sets ctime to now),
    one ctime: size, mtime and ctime, the whole key before issue 12, then cannot tell them apart."""
    deadline = time.monotonic() + 10
    while True:
        # Twice, with no stat between: a kernel with multigrain timestamps (Linux 6.13+) gives a
        # fine-grained ctime to a change that follows a stat, a coarse one to any other.
        for path in [*paths, *paths]:
            os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        if len({path.stat().st_ctime_ns for path in paths}) == 1:
            return
        assert time.monotonic() < deadline, "this file system gives every change its own ctime"


@XDIST
def test_an_edited_verdict_or_value_is_read_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool
) -> None:
    """Issue 12: "failed" edited to "passed" in a stored record made a failing file pass (its
    failed_rules still naming the rule); one digit of a stored mean changed the report."""
    write_dicom(pytester.path / "data" / "derived.dcm", image_type="DERIVED")
    write_dicom(pytester.path / "data" / "original.dcm")
    reads = count_reads(monkeypatch)
    _, first = run(pytester, xdist)
    assert statuses(first)["derived.dcm"] == ("failed", "original-image")
    assert [row["mean"] for row in first] == [21.5, 21.5]
    with sqlite3.connect(database(pytester)) as db:
        edited = db.execute(
            "UPDATE records_v6 SET record = replace(replace(record, '\"failed\"', '\"passed\"'),"
            " '\"mean\": 21.5', '\"mean\": 31.5') WHERE record LIKE '%\"mean\": 21.5%'"
        ).rowcount
    assert edited == 2
    reads.clear()
    _, second = run(pytester, xdist)
    assert second == first
    assert xdist or sorted(reads) == ["derived.dcm", "original.dcm"]


@XDIST
def test_another_file_behind_the_same_size_and_times_is_read_again(pytester: pytest.Pytester, xdist: bool) -> None:
    """A link retargeted to a file of the same size and times (only the link's target tells), and
    two folders swapped whose files were written in one clock tick (only the inodes tell: renaming
    a folder changes neither size nor times of the files in it)."""
    pytester.makefile(".yaml", rules=CT_ONLY)
    ct = write_dicom(pytester.path / "store" / "ct" / "x.dcm")  # one name: the same UID, the same size
    mr = write_dicom(pytester.path / "store" / "mr" / "x.dcm", modality="MR")
    data = pytester.path / "data"
    same_times(ct, mr, write_dicom(data / "a" / "x.dcm"), write_dicom(data / "b" / "x.dcm", modality="MR"))
    (data / "scan.dcm").symlink_to(Path("..", "store", "ct", "x.dcm"))
    _, first = run(pytester, xdist, "--dicom-rules=rules.yaml")
    assert statuses(first) == {
        "a/x.dcm": ("passed", None),
        "b/x.dcm": ("failed", "ct-only"),
        "scan.dcm": ("passed", None),
    }
    (data / "new").symlink_to(Path("..", "store", "mr", "x.dcm"))
    os.replace(data / "new", data / "scan.dcm")
    os.rename(data / "a", data / "swap")
    os.rename(data / "b", data / "a")
    os.rename(data / "swap", data / "b")
    _, second = run(pytester, xdist, "--dicom-rules=rules.yaml")
    assert statuses(second) == {
        "a/x.dcm": ("failed", "ct-only"),
        "b/x.dcm": ("passed", None),
        "scan.dcm": ("failed", "ct-only"),
    }


@XDIST
def test_content_mode_reuses_a_restored_cache_for_the_same_bytes_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool
) -> None:
    """A CI cache restored onto a fresh checkout: same paths and bytes, other times and inodes."""
    pytester.makefile(".yaml", rules=CT_ONLY)
    data = pytester.path / "data"
    files = [write_dicom(data / name) for name in ("a.dcm", "b.dcm")]
    content = ("--dicom-rules=rules.yaml", "--dicom-cache=content")
    reads = count_reads(monkeypatch)
    _, first = run(pytester, xdist, *content)
    assert statuses(first) == {"a.dcm": ("passed", None), "b.dcm": ("passed", None)}
    shutil.copytree(pytester.path / ".pytest_cache", pytester.path / "ci-cache")
    shutil.rmtree(pytester.path / ".pytest_cache")
    for path in files:
        raw = path.read_bytes()
        path.unlink()
        path.write_bytes(raw)
        os.utime(path, ns=(1, 1))
    shutil.copytree(pytester.path / "ci-cache", pytester.path / ".pytest_cache")
    reads.clear()
    assert run(pytester, xdist, *content)[1] == first
    assert xdist or reads == []
    info = files[1].stat()
    raw = files[1].read_bytes()
    files[1].write_bytes(raw.replace(MODALITY_CT, MODALITY_CT[:-2] + b"MR"))  # one value, same size
    os.utime(files[1], ns=(info.st_atime_ns, info.st_mtime_ns))
    assert files[1].stat().st_size == info.st_size
    _, changed = run(pytester, xdist, *content)
    assert statuses(changed) == {"a.dcm": ("passed", None), "b.dcm": ("failed", "ct-only")}
    assert xdist or reads == ["b.dcm"]


@XDIST
def test_a_damaged_database_is_moved_aside_and_rebuilt_in_the_same_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool
) -> None:
    """Issue 12: a damaged database turned the cache off for good, silently."""
    for name in ("a.dcm", "b.dcm"):
        write_dicom(pytester.path / "data" / name)
    _, first = run(pytester, xdist)
    garbage = b"not a database, a file damaged or replaced" * 200
    database(pytester).write_bytes(garbage)
    reads = count_reads(monkeypatch)
    result, second = run(pytester, xdist)
    assert second == first
    assert xdist or sorted(reads) == ["a.dcm", "b.dcm"]
    aside = database(pytester).with_name("records.sqlite.damaged")
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [f"*PytestCacheWarning: dicomqc: cache database was damaged, moved aside to {aside}; rebuilt"]
    )
    assert output.count("dicomqc: cache database was damaged") == 1
    assert "cache not used" not in output
    assert aside.read_bytes() == garbage
    with sqlite3.connect(database(pytester)) as db:
        assert db.execute("SELECT count(*) FROM records_v6").fetchone() == (2,)
    reads.clear()
    result, third = run(pytester, xdist=False)  # the new database serves every file
    assert (third, reads) == (first, [])
    assert "dicomqc: cache" not in result.stdout.str()
