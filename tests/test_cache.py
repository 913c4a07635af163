"""The record cache: identical to a fresh read, blind to nothing that changed, never trusting damage."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import pytest

from pytest_dicomqc.cache import BLOCK, Cached, RecordCache, Stat, content_of, fingerprint, stat_of
from pytest_dicomqc.pipeline import check_file, wanted_tags
from pytest_dicomqc.record import FileRecord
from pytest_dicomqc.rules.load import load_rules, parse_rules
from tests.helpers import count_reads, read_sheet, write_dicom

RULES = load_rules(Path(__file__).parent.parent / "rules.yaml")
TAGS = wanted_tags(RULES)
CHECKED = 1_700_000_000.5
"""The start time of the run that stored a record (seconds since the epoch)."""


def test_cached_record_equals_a_fresh_read(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "a.dcm", VOILUTFunction="SIGMOID")
    record = check_file(path, "a.dcm", RULES, TAGS)
    stat = stat_of(path)
    assert stat is not None
    cache = RecordCache(tmp_path / "c.sqlite", fingerprint(RULES, strict=False, mode="stat"))
    cache.put([(path, stat, record)], CHECKED)
    assert cache.get(path, stat) == Cached(record, CHECKED)
    # size, mtime (touched), ctime (chmod, chown), device, inode (another file in its place), link target
    for changed in range(len(stat)):
        other = Stat(tuple(part + 1 if index == changed else part for index, part in enumerate(stat)))
        assert cache.get(path, other) is None, changed
    other_rules = RecordCache(tmp_path / "c.sqlite", fingerprint(RULES, strict=True, mode="stat"))
    assert other_rules.get(path, stat) is None  # other settings: other results


def one_record(tmp_path: Path) -> tuple[Path, Stat, Path]:
    """A failing file (with a pixel mean), its stat, and a database holding its record."""
    path = write_dicom(tmp_path / "a.dcm", image_type="DERIVED")
    stat = stat_of(path)
    assert stat is not None
    cache = RecordCache(tmp_path / "c.sqlite", "fp")
    cache.put([(path, stat, check_file(path, "a.dcm", RULES, TAGS))], CHECKED)
    cache.close()
    return path, stat, tmp_path / "c.sqlite"


def test_damaged_entry_is_ignored_and_damaged_file_rebuilt(tmp_path: Path) -> None:
    path, stat, database = one_record(tmp_path)
    with sqlite3.connect(database) as db:
        db.execute("UPDATE records_v6 SET record = '{\"path\": 1'")
    assert RecordCache(database, "fp").get(path, stat) is None
    garbage = b"this is not a database" * 100
    database.write_bytes(garbage)
    broken = RecordCache(database, "fp")
    assert broken.get(path, stat) is None
    assert (broken.moved_aside, broken.problem) == (tmp_path / "c.sqlite.damaged", "")
    assert (tmp_path / "c.sqlite.damaged").read_bytes() == garbage
    record = check_file(path, "a.dcm", RULES, TAGS)
    broken.put([(path, stat, record)], CHECKED)
    broken.close()
    assert RecordCache(database, "fp").get(path, stat) == Cached(record, CHECKED)  # the new database


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE records_v6 SET record = replace(record, '\"failed\"', '\"passed\"')",  # the verdict
        "UPDATE records_v6 SET record = replace(record, '\"mean\": 2', '\"mean\": 3')",  # one digit of a value
        "UPDATE records_v6 SET checked = checked + 1",  # when it was checked
        "UPDATE records_v6 SET state = '0', path = x'00'",  # moved to another file
    ],
    ids=["verdict", "mean", "checked", "key"],
)
def test_an_entry_edited_after_it_was_written_is_not_trusted(tmp_path: Path, edit: str) -> None:
    """SQLite's own integrity check does not see an edited value: the entry's checksum does."""
    _, _, database = one_record(tmp_path)
    with sqlite3.connect(database) as db:
        before = db.execute("SELECT * FROM records_v6").fetchone()
        db.execute(edit)
        after = db.execute("SELECT * FROM records_v6").fetchone()
    assert after != before
    path, stat = Path(os.fsdecode(after[0])), Stat(tuple(int(part) for part in after[1].split(",")))
    assert RecordCache(database, "fp").get(path, stat) is None  # asked for the key it has now


def damaged_pages(tmp_path: Path) -> tuple[Path, Stat, FileRecord, Path]:
    """A file, its stat and record, and a database of 300 other entries whose pages after the
    first are damaged (a disk error, a copy cut short): "database disk image is malformed"."""
    path = write_dicom(tmp_path / "a.dcm")
    record = check_file(path, "a.dcm", RULES, TAGS)
    stat = stat_of(path)
    assert stat is not None
    database = tmp_path / "c.sqlite"
    cache = RecordCache(database, "fp")
    cache.put([(tmp_path / f"{index}.dcm", stat, record) for index in range(300)], CHECKED)
    cache.close()
    damaged = bytearray(database.read_bytes())
    damaged[4096:] = b"\xa5" * (len(damaged) - 4096)
    database.write_bytes(damaged)
    return path, stat, record, database


def test_a_database_with_corrupt_pages_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    path, stat, record, database = damaged_pages(tmp_path)
    cache = RecordCache(database, "fp")
    assert cache.get(path, stat) is None
    assert (cache.moved_aside, cache.problem) == (tmp_path / "c.sqlite.damaged", "")
    cache.put([(path, stat, record)], CHECKED)
    cache.close()
    assert RecordCache(database, "fp").get(path, stat) == Cached(record, CHECKED)


def test_a_database_moved_aside_by_another_process_is_not_moved_again(tmp_path: Path) -> None:
    """Two processes (xdist workers) find the same damage: the second must not move aside the new
    database the first made, with what the first stored in it."""
    path, stat, record, database = damaged_pages(tmp_path)
    damaged = database.read_bytes()
    first, second = RecordCache(database, "fp"), RecordCache(database, "fp")  # both open the damaged one
    assert first.get(path, stat) is None and first.moved_aside is not None
    first.put([(path, stat, record)], CHECKED)
    first.close()
    assert second.get(path, stat) is None and second.problem == ""
    second.close()
    assert (tmp_path / "c.sqlite.damaged").read_bytes() == damaged
    assert RecordCache(database, "fp").get(path, stat) == Cached(record, CHECKED)


def test_a_retargeted_link_has_another_stat_even_to_the_same_file(tmp_path: Path) -> None:
    """Where inodes are not stable (some network file systems), the link's text still tells."""
    target = write_dicom(tmp_path / "a.dcm")
    os.link(target, tmp_path / "b.dcm")  # the same file under another name
    (tmp_path / "scan.dcm").symlink_to("a.dcm")
    before = stat_of(tmp_path / "scan.dcm")
    (tmp_path / "new").symlink_to("b.dcm")
    os.replace(tmp_path / "new", tmp_path / "scan.dcm")
    after = stat_of(tmp_path / "scan.dcm")
    assert before is not None and after is not None
    assert before[:-1] == after[:-1] and before != after
    plain = stat_of(target)
    assert plain is not None and plain[:-1] == before[:-1] and plain[-1] == 0


def test_content_of_is_the_bytes_and_their_size(tmp_path: Path) -> None:
    data = os.urandom(2 * BLOCK + 17)  # several blocks
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(data)
    second.write_bytes(data)
    digest = int.from_bytes(hashlib.blake2b(data, digest_size=32).digest(), "big")
    assert content_of(first) == content_of(second) == (len(data), digest)
    second.write_bytes(data[:BLOCK] + bytes([data[BLOCK] ^ 1]) + data[BLOCK + 1 :])  # one bit of the second block
    assert content_of(second) != content_of(first)
    os.mkfifo(tmp_path / "fifo")
    assert content_of(tmp_path / "fifo") is None  # and it did not wait for a writer
    assert content_of(tmp_path / "missing") is None


def run(pytester: pytest.Pytester, *args: str) -> list[dict[str, object]]:
    result = pytester.runpytest("--dicom-dir=data", "--dicom-report=r.xlsx", *args)
    assert result.ret in (0, 1)
    return read_sheet(pytester.path / "r.xlsx")


def test_re_run_reads_only_changed_files(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    data = pytester.path / "data"
    for name in ("a.dcm", "b.dcm", "c.dcm"):
        write_dicom(data / name)
    first = run(pytester)
    reads = count_reads(monkeypatch)
    assert run(pytester) == first and reads == []
    write_dicom(data / "b.dcm", image_type="DERIVED")
    os.utime(data / "b.dcm", ns=(1, 1))  # a changed file, whatever its clock says
    second = run(pytester)
    assert reads == ["b.dcm"]
    assert [(r["path"], r["status"]) for r in second] == [("a.dcm", "passed"), ("b.dcm", "failed"), ("c.dcm", "passed")]
    reads.clear()
    run(pytester, "--dicom-no-cache")
    assert reads == ["a.dcm", "b.dcm", "c.dcm"]
    reads.clear()
    run(pytester, "--cache-clear")
    assert reads == ["a.dcm", "b.dcm", "c.dcm"]


def test_changed_rules_or_waivers_read_every_file_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record holds the rules' verdicts: under other rules or waivers it is stale, though no file changed."""
    data = pytester.path / "data"
    write_dicom(data / "a.dcm")
    write_dicom(data / "b.dcm", image_type="DERIVED")
    rules = "version: 1\nrules:\n  - {id: original-image, tag: ImageType, contains: ORIGINAL}\n"
    pytester.makefile(".yaml", rules=rules)
    reads = count_reads(monkeypatch)

    def statuses(*args: str) -> list[tuple[object, object]]:
        reads.clear()
        return [(row["path"], row["status"]) for row in run(pytester, "--dicom-rules=rules.yaml", *args)]

    assert statuses() == [("a.dcm", "passed"), ("b.dcm", "failed")]
    assert (statuses(), reads) == ([("a.dcm", "passed"), ("b.dcm", "failed")], [])
    pytester.makefile(".yaml", rules=rules + "  - {id: mr-only, tag: Modality, equals: MR}\n")
    assert (statuses(), reads) == ([("a.dcm", "failed"), ("b.dcm", "failed")], ["a.dcm", "b.dcm"])
    pytester.makefile(".yaml", rules=rules)
    pytester.makefile(
        ".yaml",
        waivers="version: 1\nwaivers:\n  - {path: b.dcm, rules: [original-image], reason: accepted reformat}\n",
    )
    assert statuses("--dicom-waivers=waivers.yaml") == [("a.dcm", "passed"), ("b.dcm", "waived")]
    assert reads == ["a.dcm", "b.dcm"]
    assert (statuses("--dicom-waivers=waivers.yaml"), reads) == ([("a.dcm", "passed"), ("b.dcm", "waived")], [])
    assert (statuses(), reads) == ([("a.dcm", "passed"), ("b.dcm", "failed")], ["a.dcm", "b.dcm"])  # waiver gone


def test_a_chmod_alone_reads_the_file_again(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed mode can change the record (Permission denied) while size and mtime stay: the key has ctime."""
    data = pytester.path / "data"
    for name in ("a.dcm", "b.dcm"):
        write_dicom(data / name)
    run(pytester)
    before = (data / "b.dcm").stat()
    os.chmod(data / "b.dcm", 0o600)
    deadline = time.monotonic() + 10
    while (data / "b.dcm").stat().st_ctime_ns == before.st_ctime_ns:  # a coarse clock: chmod until it ticks
        assert time.monotonic() < deadline, "this file system does not update ctime on chmod"
        os.chmod(data / "b.dcm", 0o644)
        os.chmod(data / "b.dcm", 0o600)
    after = data / "b.dcm"
    assert (after.stat().st_size, after.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    reads = count_reads(monkeypatch)
    run(pytester)
    assert reads == ["b.dcm"]


def test_fingerprint_changes_with_the_rules_the_waivers_and_strictness() -> None:
    """Each decides a file's verdict without the file changing: none may share a fingerprint."""
    rules = "version: 1\nrules:\n  - {id: original, tag: ImageType, contains: ORIGINAL}\n"
    waiver = "waivers:\n  - {path: 'legacy/**', rules: '*', reason: accepted}\n"
    variants = [
        (parse_rules(rules, "rules.yaml"), False),
        (parse_rules(rules, "rules.yaml"), True),
        (parse_rules(rules.replace("ORIGINAL", "PRIMARY"), "rules.yaml"), False),
        (parse_rules(rules + waiver, "rules.yaml"), False),
        (parse_rules(rules + waiver.replace("legacy", "old"), "rules.yaml"), False),
    ]
    prints = [fingerprint(ruleset, strict, "stat") for ruleset, strict in variants]
    prints.append(fingerprint(*variants[0], "content"))  # entries of one cache mode are not served in the other
    assert len(set(prints)) == len(variants) + 1
    assert fingerprint(*variants[0], "stat") == prints[0]  # and the same rules give the same one
    assert all(len(p) == 64 and int(p, 16) >= 0 for p in prints)


def test_installing_a_decoder_invalidates_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_dicomqc import cache

    before = fingerprint(RULES, strict=False, mode="stat")
    monkeypatch.setattr(cache, "_version", lambda name: "2.0" if name == "pylibjpeg-libjpeg" else "1.0")
    assert fingerprint(RULES, strict=False, mode="stat") != before


def stored(pytester: pytest.Pytester) -> dict[str, float]:
    """Each stored file's name and the start time of the run that read it."""
    database = pytester.path / ".pytest_cache" / "d" / "dicomqc" / "records.sqlite"
    with sqlite3.connect(database) as db:
        return {
            os.fsdecode(path).rpartition("/")[2]: checked
            for path, checked in db.execute("SELECT path, checked FROM records_v6")
        }


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_a_re_run_stores_only_the_files_it_read(pytester: pytest.Pytester, xdist: bool) -> None:
    """A record served from the cache is not written again (a warm run of 20,000 files spent a
    second on that): it keeps the time it was first checked, which a partial run shows."""
    data = pytester.path / "data"
    for name in ("a.dcm", "b.dcm"):
        write_dicom(data / name)
    options = ("-n", "2") if xdist else ("-p", "no:xdist")
    pytester.runpytest_subprocess("--dicom-dir=data", *options)
    first = stored(pytester)
    assert sorted(first) == ["a.dcm", "b.dcm"]
    time.sleep(0.01)  # a later run starts at a later time
    pytester.runpytest_subprocess("--dicom-dir=data", *options)
    assert stored(pytester) == first
    os.utime(data / "b.dcm", ns=(1, 1))
    pytester.runpytest_subprocess("--dicom-dir=data", *options)
    again = stored(pytester)
    assert again["a.dcm"] == first["a.dcm"]
    assert again["b.dcm"] > first["b.dcm"]


def test_records_live_in_pytests_cache_folder(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file the README names holds the records: with it a re-run reads nothing, without it everything."""
    write_dicom(pytester.path / "data" / "a.dcm")
    reads = count_reads(monkeypatch)
    run(pytester)
    database = pytester.path / ".pytest_cache" / "d" / "dicomqc" / "records.sqlite"
    assert database.is_file()
    reads.clear()
    run(pytester)
    assert reads == []
    database.unlink()
    run(pytester)
    assert reads == ["a.dcm"]


def test_without_cacheprovider_every_run_reads_every_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.dcm", "b.dcm"):
        write_dicom(pytester.path / "data" / name)
    reads = count_reads(monkeypatch)
    for _ in range(2):
        reads.clear()
        run(pytester, "-p", "no:cacheprovider")
        assert reads == ["a.dcm", "b.dcm"]
    assert not (pytester.path / ".pytest_cache").exists()


def test_strictness_is_in_the_fingerprint(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record holds verdicts: a warning that --dicom-strict turns into a failure needs a fresh read."""
    rules = "version: 1\nrules:\n  - {id: thin, tag: SliceThickness, max: 2, severity: warning}\n"
    pytester.makefile(".yaml", rules=rules)
    write_dicom(pytester.path / "data" / "thick.dcm", SliceThickness="5.0")
    write_dicom(pytester.path / "data" / "thin.dcm", SliceThickness="1.0")
    reads = count_reads(monkeypatch)

    def statuses(*args: str) -> list[tuple[object, object]]:
        reads.clear()
        return [(row["path"], row["status"]) for row in run(pytester, "--dicom-rules=rules.yaml", *args)]

    lenient = [("thick.dcm", "passed"), ("thin.dcm", "passed")]
    strict = [("thick.dcm", "failed"), ("thin.dcm", "passed")]
    everything = ["thick.dcm", "thin.dcm"]
    assert statuses() == lenient
    assert (statuses(), reads) == (lenient, [])
    assert (statuses("--dicom-strict"), reads) == (strict, everything)
    assert (statuses("--dicom-strict"), reads) == (strict, [])
    assert (statuses(), reads) == (lenient, everything)


def test_a_path_that_is_not_utf8_is_kept_and_found(tmp_path: Path) -> None:
    """File names are bytes: one that is not UTF-8 (a Latin-1 export) is still a key of its own."""
    path = write_dicom(tmp_path / os.fsdecode(b"caf\xe9.dcm"))
    other = write_dicom(tmp_path / "caf\\xe9.dcm")  # the same text as the key shows the byte: another file
    cache = RecordCache(tmp_path / "c.sqlite", "fp")
    records = [(p, stat_of(p), check_file(p, p.name, RULES, TAGS)) for p in (path, other)]
    cache.put([(p, s, r) for p, s, r in records if s is not None], CHECKED)
    assert [cache.get(p, s) for p, s, _ in records if s is not None] == [Cached(r, CHECKED) for _, _, r in records]


def test_a_closed_cache_serves_nothing(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "a.dcm")
    stat = stat_of(path)
    assert stat is not None
    cache = RecordCache(tmp_path / "c.sqlite", "fp")
    cache.put([(path, stat, check_file(path, "a.dcm", RULES, TAGS))], CHECKED)
    cache.close()
    assert cache.get(path, stat) is None


def test_fingerprint_of_rules_holding_a_lone_surrogate() -> None:
    """YAML's "\\udce9" escape gives text that is not UTF-8: the fingerprint still takes it."""
    surrogate = parse_rules('version: 1\nrules:\n  - {id: r, tag: Rows, min: 1, description: "caf\\udce9"}\n', "r.yaml")
    plain = parse_rules('version: 1\nrules:\n  - {id: r, tag: Rows, min: 1, description: "caf"}\n', "r.yaml")
    assert fingerprint(surrogate, False, "stat") != fingerprint(plain, False, "stat")


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_a_cache_folder_that_cannot_be_made_costs_a_warning_not_the_run(pytester: pytest.Pytester, xdist: bool) -> None:
    """Issue 12: a cache folder that cannot be made (read-only checkout; here ``.pytest_cache/d``
    is a file, which stops root too) was an INTERNALERROR, exit 3, and no report."""
    write_dicom(pytester.path / "data" / "a.dcm")
    (pytester.path / ".pytest_cache").mkdir()
    (pytester.path / ".pytest_cache" / "d").write_text("not a folder")
    args = ("--dicom-dir=data", "-W", "ignore:Benchmarks are automatically disabled")
    result = pytester.runpytest_subprocess(*args, "-n", "2") if xdist else pytester.runpytest(*args)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*PytestCacheWarning: dicomqc: cache not used, every file is read: *Not a directory*"])
    assert result.stdout.str().count("dicomqc: cache not used") == 1
    assert [row["status"] for row in read_sheet(pytester.path / "metadata_dicom.xlsx")] == ["passed"]


def test_a_locked_cache_costs_one_wait_and_a_warning(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: another process holding the database added 30 s per query (60 s to a 5-file run).
    Now the run waits once (LOCK_WAIT, 1 s), says so once, and reads every file."""
    (pytester.path / "rules.yaml").write_text("version: 1\nrules: []\n")  # copies: no dataset checks
    for name in ("a.dcm", "b.dcm", "c.dcm"):
        write_dicom(pytester.path / "data" / name)
    assert pytester.runpytest("--dicom-dir=data").ret == 0
    holder = sqlite3.connect(pytester.path / ".pytest_cache" / "d" / "dicomqc" / "records.sqlite")
    holder.execute("BEGIN EXCLUSIVE")  # another run, a backup tool: holds it for the whole run
    try:
        reads = count_reads(monkeypatch)
        result = pytester.runpytest("--dicom-dir=data")
    finally:
        holder.rollback()
        holder.close()
    assert result.ret == 0
    assert reads == ["a.dcm", "b.dcm", "c.dcm"]
    result.stdout.fnmatch_lines(
        ["*PytestCacheWarning: dicomqc: cache not used, every file is read: database is locked"]
    )
    assert result.stdout.str().count("dicomqc: cache not used") == 1
    assert "damaged" not in result.stdout.str()
    assert not (pytester.path / ".pytest_cache" / "d" / "dicomqc" / "records.sqlite.damaged").exists()
    reads.clear()
    assert pytester.runpytest("--dicom-dir=data").ret == 0
    assert reads == []  # held, not damaged: kept as it was


def test_content_keys_taken_by_the_reading_processes_are_found_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read ahead (64 files and more), a file's hash is taken in the reading process, before its
    read: the next run, keying in the loop, finds each entry, whatever the files' times."""
    data = pytester.path / "data"
    files = [write_dicom(data / f"{index:02d}.dcm") for index in range(64)]
    first = run(pytester, "--dicom-cache=content", "--dicom-workers=2")
    for path in files:
        os.utime(path, ns=(1, 1))  # a fresh checkout: other times, the same bytes
    reads = count_reads(monkeypatch)
    assert run(pytester, "--dicom-cache=content", "--dicom-workers=0") == first
    assert reads == []
    run(pytester, "--dicom-workers=0")
    assert len(reads) == 64  # entries of the content mode are not served in the stat mode
