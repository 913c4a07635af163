"""The writing process (writers/stream.py): rows in report order whatever order they come in, the
end of the run, and every way it can go wrong falling back to a whole report written in pytest's
process."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from pytest_dicomqc.conclusion import Scope, conclude
from pytest_dicomqc.record import FileRecord, ReportRow
from pytest_dicomqc.rules.load import parse_rules
from pytest_dicomqc.writers import stream as streaming
from pytest_dicomqc.writers.report import ReportPlan
from pytest_dicomqc.writers.sheets import end_of_run, files_plan
from pytest_dicomqc.writers.stream import ReportStream
from tests.helpers import read_sheet

RULES = parse_rules(
    "version: 1\nrules:\n  - id: original-image\n    tag: ImageType\n    contains: ORIGINAL\n", "r.yaml"
)


def rows_of(count: int) -> list[ReportRow]:
    rows = []
    for index in range(count):
        path = f"s{index // 10:02d}/{index:04d}.dcm"
        failed = index % 7 == 3
        record = FileRecord(
            path,
            "dicom",
            "failed" if failed else "passed",
            "",
            {"ImageType": "DERIVED" if failed else "ORIGINAL", "SeriesInstanceUID": f"1.2.{index // 10}"},
            {"original-image": "FAIL" if failed else "PASS"},
            (),
        )
        rows.append(ReportRow(path, "failed" if failed else "passed", record))
    return rows


def plan(tmp_path: Path, count: int, json: bool = False) -> ReportPlan:
    return ReportPlan(
        tmp_path / "r.xlsx", files_plan(RULES, []), json=tmp_path / "r.jsonl" if json else None, expected_files=count
    )


def finish(stream: ReportStream, rows: list[ReportRow]) -> None:
    conclusion = conclude(rows, RULES, Scope("data/"))
    stream.finish(list(conclusion.rows), end_of_run(conclusion, RULES, [("run", "test")], json_summary={"x": 1}))


def expected_files(rows: list[ReportRow]) -> list[tuple[str, str, str | None]]:
    return [(row.path, row.status, "original-image" if row.status == "failed" else None) for row in rows]


def files_of(report: Path) -> list[tuple[str, str, str | None]]:
    return [(r["path"], r["status"], r["failed_rules"]) for r in read_sheet(report)]


@pytest.fixture
def small_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "STREAM_MIN_FILES", 10)


@pytest.mark.usefixtures("small_minimum")
def test_rows_coming_out_of_order_are_written_in_report_order(tmp_path: Path) -> None:
    """As under xdist: each worker finishes its files in its own order; a row waits until the rows
    before it have come, and the writing process gets them in report order, in batches."""
    rows = rows_of(700)
    stream = ReportStream(plan(tmp_path, 700, json=True), [row.path for row in rows], stream=True)
    assert stream._process is not None  # a writing process of its own
    arrived: dict[str, ReportRow] = {}
    shuffled = rows[:]
    random.Random(4).shuffle(shuffled)
    sent = []
    for row in shuffled:
        arrived[row.path] = row
        stream.advance(arrived)
        sent.append(stream.sent)
    assert sent == sorted(sent) and sent[-1] == 700  # the front moves only forward, to the end
    finish(stream, rows)
    assert files_of(tmp_path / "r.xlsx") == expected_files(rows)
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 701 and lines[-1] == '{"x":1}'
    assert [line.split('"path":"')[1].split('"')[0] for line in lines[:-1]] == [row.path for row in rows]
    assert sorted(os.listdir(tmp_path)) == ["r.jsonl", "r.xlsx"]


@pytest.mark.usefixtures("small_minimum")
def test_final_rows_in_another_order_are_written_whole_here(tmp_path: Path) -> None:
    """A partial xdist run's report lists every file of the dataset, in another order than the
    rows streamed: the writing process is stopped and pytest's process writes the report."""
    rows = rows_of(50)
    stream = ReportStream(plan(tmp_path, 50), [row.path for row in rows], stream=True)
    stream.advance({row.path: row for row in rows})
    process = stream._process
    finish(stream, list(reversed(rows)))
    assert not process.is_alive()
    assert files_of(tmp_path / "r.xlsx") == expected_files(list(reversed(rows)))


@pytest.mark.usefixtures("small_minimum")
def test_a_writing_process_that_died_is_replaced_by_pytests_own(tmp_path: Path) -> None:
    """Killed (out of memory, a signal to its group): nothing of the report is lost."""
    rows = rows_of(600)
    stream = ReportStream(plan(tmp_path, 600), [row.path for row in rows], stream=True)
    stream.advance({row.path: row for row in rows[:300]})
    process = stream._process
    process.kill()  # the feeder thread may find it gone first, and let it go
    process.join()
    stream.advance({row.path: row for row in rows})
    finish(stream, rows)
    assert files_of(tmp_path / "r.xlsx") == expected_files(rows)
    assert sorted(os.listdir(tmp_path)) == ["r.xlsx"]  # the dead process's partial file is gone


@pytest.mark.usefixtures("small_minimum")
def test_a_report_that_cannot_be_written_raises_oserror_with_its_path(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    rows = rows_of(40)
    report_plan = ReportPlan(folder / "r.xlsx", files_plan(RULES, []), expected_files=40)
    stream = ReportStream(report_plan, [row.path for row in rows], stream=True)
    stream.advance({row.path: row for row in rows})
    deadline = time.monotonic() + 60
    while not list(folder.iterdir()):  # the writing process has made its partial file
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for leftover in folder.iterdir():  # then its folder is gone, and a file has its name
        leftover.unlink()
    folder.rmdir()
    folder.write_text("not a folder")
    with pytest.raises(OSError, match=r"Not a directory|No such file or directory") as raised:
        finish(stream, rows)
    assert str(folder) in str(raised.value.filename)
    assert folder.read_text() == "not a folder"


def test_small_datasets_and_partial_runs_are_written_at_the_end_in_pytests_process(tmp_path: Path) -> None:
    rows = rows_of(20)
    for stream in (
        ReportStream(plan(tmp_path, 20), [row.path for row in rows], stream=True),  # below STREAM_MIN_FILES
        ReportStream(plan(tmp_path, 2000), [row.path for row in rows] * 100, stream=False),  # partial
    ):
        stream.advance({row.path: row for row in rows})
        assert (stream._process, stream.sent) == (None, 0)
        finish(stream, rows)
        assert files_of(tmp_path / "r.xlsx") == expected_files(rows)


@pytest.mark.usefixtures("small_minimum")
def test_a_row_replaced_after_it_was_streamed_is_written_as_replaced(tmp_path: Path) -> None:
    """A crashed xdist worker's report can come after the file's own: the final row, not the one
    streamed, is the report's (and the terminal's, and the Summary's)."""
    rows = rows_of(30)
    stream = ReportStream(plan(tmp_path, 30), [row.path for row in rows], stream=True)
    stream.advance({row.path: row for row in rows})
    final = [*rows[:5], ReportRow(rows[5].path, "crashed", error="worker crashed"), *rows[6:]]
    finish(stream, final)
    assert files_of(tmp_path / "r.xlsx")[5] == (rows[5].path, "crashed", None)
